"""The messages of the services and schemas behind the enterprise's forms, in the page's language.

The services answer in English (the API's language); a page shows each field's message beside
the field in Chinese or English. :func:`field_messages` knows the messages of box registration,
staff accounts (``app/accounts/passwords.py``) and manifest creation; marshmallow's defaults go
through :func:`app.translations.localise_message`; a message neither knows becomes a generic line
in the page's language, so no English reaches a Chinese page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from flask_babel import get_locale
from flask_babel import gettext as _

from app.translations import localise_message

_ASCII_ONLY = re.compile(r"^[\x20-\x7e]*$")


def _patterns() -> list[tuple[re.Pattern[str], Callable[[dict[str, str]], str]]]:
    return [
        (re.compile(r"at least (?P<n>\d+) characters"), lambda m: _("至少 %(n)s 个字符", **m)),
        (re.compile(r"at most (?P<n>\d+) characters"), lambda m: _("不能超过 %(n)s 个字符", **m)),
        (re.compile(r"too common.*"), lambda m: _("过于常见，请换一个不在常用密码表中的密码")),
        (re.compile(r"too simple.*"), lambda m: _("过于简单：只是一两个字符的重复")),
        (re.compile(r"must not be the username"), lambda m: _("不能与用户名相同")),
        (re.compile(r"already taken|already exists|already registered"), lambda m: _("已存在")),
        (re.compile(r"3.80 letters, digits or _\.@-"), lambda m: _("3–80 个字母、数字或 _.@-")),
        (re.compile(r"must be in (?P<range>.+)"), lambda m: _("应在 %(range)s 范围内", **m)),
        (re.compile(r"must be greater than 0( \(at least 1 g\))?"), lambda m: _("必须大于 0")),
        (re.compile(r"at most 24"), lambda m: _("不能大于 24")),
        (re.compile(r"must be above pressure_drop_min_pa"), lambda m: _("应大于压差下限")),
        (re.compile(r"a mass fraction in .*"), lambda m: _("应为 0 到 0.5 之间的质量分数，例如 0.10")),
        (re.compile(r"one of .*"), lambda m: _("请从列表中选择")),
        (re.compile(r"unknown organisation.*"), lambda m: _("单位不存在")),
        (re.compile(r"not a valid box code.*"), lambda m: _("碳箱码不正确（校验位不符）")),
        (re.compile(r"the carrier .*must be an organisation with the carrier role"), lambda m: _("请选择承运单位")),
        (
            re.compile(r".* holds no valid road transport permit.*"),
            lambda m: _("该承运单位没有有效的危险货物道路运输许可"),
        ),
        (
            re.compile(r"the receiver .*must be an organisation with the receiver or regenerator role"),
            lambda m: _("请选择接受单位"),
        ),
        (
            re.compile(r".* holds no valid hazardous-waste licence covering (?P<code>[\d-]+).*"),
            lambda m: _("该单位没有覆盖 %(code)s 的有效危险废物经营许可证", **m),
        ),
        (re.compile(r"at least one line is required"), lambda m: _("请至少选择一种库存废物")),
        (
            re.compile(
                r"only (?P<available>[\d.e+-]+) kg of (?P<code>[\d-]+) available in stock; (?P<want>[\d.e+-]+) kg requested"
            ),
            lambda m: _("%(code)s 可转移 %(available)s kg，填写了 %(want)s kg", **m),
        ),
        (re.compile(r"unknown waste code.*|.*not in the national catalogue.*"), lambda m: _("废物代码不在名录中")),
        (re.compile(r"the consignor .*"), lambda m: _("本单位不能作为移出人填写联单")),
    ]


def localise_field_message(message: str) -> str:
    key = str(message).strip().rstrip(".")
    for pattern, make in _patterns():
        match = pattern.fullmatch(key)
        if match:
            return make(match.groupdict())
    text = localise_message(key)
    if str(get_locale() or "zh") == "zh" and _ASCII_ONLY.match(text) and re.search(r"[A-Za-z]{3}", text):
        return _("输入不正确")
    return text


def field_messages(errors: Mapping[str, Any]) -> dict[str, list[str]]:
    """``{field: [message, …]}`` of a refused form (schema or service errors) in the page's language."""
    out: dict[str, list[str]] = {}
    for name, messages in errors.items():
        if isinstance(messages, Mapping):  # nested (marshmallow's lines.0.quantity_kg)
            for sub, inner in field_messages(messages).items():
                out[f"{name}.{sub}"] = inner
            continue
        items = messages if isinstance(messages, list | tuple) else [messages]
        out[str(name)] = [localise_field_message(str(m)) for m in items]
    return out
