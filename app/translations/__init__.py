"""Messages for pages in the page's language.

The API speaks English (marshmallow's default validation messages, services' details, some of
them bilingual "中文 (English)"); pages must not. :func:`localise_message` turns marshmallow's
default messages (``validate.Length``, ``Range``, ``OneOf``, field types…) into catalogue
strings with their numbers; :func:`localise_error` turns a :class:`DomainError` into one line
for a page. Both need a request (Flask-Babel's ``gettext``); the services stay Flask-free.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask_babel import get_locale
from flask_babel import gettext as _

_NUM = r"(?P<{}>-?[\d.]+(?:e[+-]?\d+)?)"


def _patterns() -> list[tuple[re.Pattern[str], Any]]:
    n = _NUM.format
    return [
        (re.compile(rf"longer than maximum length {n('max')}"), lambda m: _("不能超过 %(max)s 个字符", **m)),
        (re.compile(rf"shorter than minimum length {n('min')}"), lambda m: _("至少 %(min)s 个字符", **m)),
        (
            re.compile(rf"length must be between {n('min')} and {n('max')}"),
            lambda m: _("长度应为 %(min)s–%(max)s 个字符", **m),
        ),
        (re.compile(rf"length must be {n('equal')}"), lambda m: _("长度应为 %(equal)s 个字符", **m)),
        (
            re.compile(rf"must be greater than or equal to {n('min')} and less than or equal to {n('max')}"),
            lambda m: _("应在 %(min)s 到 %(max)s 之间", **m),
        ),
        (
            re.compile(rf"must be greater than {n('min')} and less than or equal to {n('max')}"),
            lambda m: _("应大于 %(min)s 且不超过 %(max)s", **m),
        ),
        (
            re.compile(rf"must be greater than or equal to {n('min')} and less than {n('max')}"),
            lambda m: _("应不小于 %(min)s 且小于 %(max)s", **m),
        ),
        (
            re.compile(rf"must be greater than {n('min')} and less than {n('max')}"),
            lambda m: _("应大于 %(min)s 且小于 %(max)s", **m),
        ),
        (re.compile(rf"must be greater than or equal to {n('min')}"), lambda m: _("不能小于 %(min)s", **m)),
        (re.compile(rf"must be greater than {n('min')}"), lambda m: _("必须大于 %(min)s", **m)),
        (re.compile(rf"must be less than or equal to {n('max')}"), lambda m: _("不能大于 %(max)s", **m)),
        (re.compile(rf"must be less than {n('max')}"), lambda m: _("必须小于 %(max)s", **m)),
        (re.compile(r"must be one of: (?P<choices>.*)"), lambda m: _("应为以下之一：%(choices)s", **m)),
        (re.compile(r"missing data for required field|field may not be null|required"), lambda m: _("必填")),
        (re.compile(r"not a valid (number|integer)"), lambda m: _("不是有效的数字")),
        (re.compile(r"not a valid datetime"), lambda m: _("不是有效的日期时间")),
        (re.compile(r"not a valid date"), lambda m: _("不是有效的日期")),
        (re.compile(r"not a valid (string|boolean|list|mapping)"), lambda m: _("格式不正确")),
        (re.compile(r"not a valid email address"), lambda m: _("不是有效的电子邮箱地址")),
        (re.compile(r"number too large"), lambda m: _("数值过大")),
        (
            re.compile(r"string does not match expected pattern|invalid value|invalid input type"),
            lambda m: _("格式不正确"),
        ),
        (re.compile(r"unknown field"), lambda m: _("未知字段")),
    ]


def localise_message(message: str) -> str:
    """marshmallow's default message in the page's language; any other message unchanged."""
    key = str(message).strip().rstrip(".").lower()
    for pattern, make in _patterns():
        match = pattern.fullmatch(key)
        if match:
            return make({k: v for k, v in match.groupdict().items()})
    return str(message)


def field_names() -> dict[str, str]:
    """Labels of the form fields whose messages pages show."""
    return {
        "vehicle_plate": _("车牌号"),
        "driver_name": _("驾驶员"),
        "driver_phone": _("驾驶员电话"),
        "picked_up_at": _("提货时间"),
    }


_BILINGUAL = re.compile(r"(?P<zh>.*[\u3400-\u9fff].*?) \((?P<en>[\x20-\x7e]+)\)")


def localise_error(exc: Any, locale: str | None = None) -> str:
    """One line for a page about a refused request (a ``DomainError``): its field messages in the
    page's language, else its bilingual detail's half in that language, else a generic line."""
    locale = locale or str(get_locale() or "zh")
    errors = getattr(exc, "errors", None) or {}
    if errors:
        names = field_names()
        parts = []
        for name, messages in errors.items():
            messages = messages if isinstance(messages, list) else [messages]
            text = "；".join(localise_message(str(m)) for m in messages if isinstance(m, str))
            parts.append(f"{names.get(name, name)}：{text}" if locale == "zh" else f"{names.get(name, name)}: {text}")
        return ("；" if locale == "zh" else "; ").join(parts)
    detail = str(getattr(exc, "detail", "") or "")
    match = _BILINGUAL.fullmatch(detail)
    if match:
        return match["zh"] if locale == "zh" else match["en"]
    if locale == "zh" and re.search(r"[\u3400-\u9fff]", detail):
        return detail
    if locale != "zh" and detail and not re.search(r"[\u3400-\u9fff]", detail):
        return detail
    return _("操作未能完成，请检查后重试。")


def rule_reason(reason: dict[str, Any], messages: Mapping[str, tuple[str, str]]) -> str:
    """A colour reason as stored in the colour history (``code``, ``level``, ``observed``,
    ``threshold``) in the page's language: the rule file's zh/en message with its values, or the
    stored message; the code only for a rule the file no longer has. ``messages``: code → (zh, en)
    message templates of the rules in force (the caller's app's rule file: app.web.names)."""
    zh = str(get_locale() or "zh") == "zh"
    stored = reason.get("zh" if zh else "en")
    if stored:
        return str(stored)
    code = reason.get("code", "")
    # The grey reasons app/boxes/colour.py gives itself (no rule in the file).
    if code == "no_active_fill":
        return _("尚未装填活性炭")
    if code == "box_not_in_service":
        return {"stopped": _("已停用"), "decommissioned": _("已报废")}.get(reason.get("observed") or "", _("未投用"))
    texts = messages.get(code)
    template = (texts[0] if zh else texts[1]) if texts else ""
    if not template:
        return str(code)
    values = {
        "observed": reason.get("observed") if reason.get("observed") is not None else "—",
        "threshold": reason.get("threshold") if reason.get("threshold") is not None else "—",
    }
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template
