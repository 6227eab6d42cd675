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
        # The plausible ranges (app/common/limits.py) and the step services' field messages.
        (
            re.compile(rf"must be at most {n('max')}(?: (?P<unit>[^ (]+))?(?: \(plausible .*\))?"),
            lambda m: _("不能超过 %(max)s %(unit)s", max=m["max"], unit=m.get("unit") or ""),
        ),
        (re.compile(r"a weighed quantity ≥ 0 is required"), lambda m: _("请填写称重量（≥ 0）")),
        (re.compile(r"between 0 and the received quantity"), lambda m: _("应在 0 到称重量之间")),
        (
            re.compile(rf"cannot send back more than the {n('kg')} kg shipped"),
            lambda m: _("退回量不能超过运出的 %(kg)s kg", **m),
        ),
        (re.compile(r"required when only part is accepted"), lambda m: _("部分接受时必须填写原因")),
        (
            re.compile(r"nothing accepted: refuse the manifest with the reject action"),
            lambda m: _("全部拒收请使用整单拒收"),
        ),
        (re.compile(r"a reason is required"), lambda m: _("必须填写原因")),
        (re.compile(r"no manifest with this number was sent to you"), lambda m: _("没有发给本单位的此编号联单")),
        (re.compile(r"at least one received manifest line is required"), lambda m: _("请至少填写一行投入量")),
        (re.compile(r"already recorded"), lambda m: _("该批次号已登记")),
        (
            re.compile(rf"cannot exceed the {n('kg')} kg of waste carbon consumed"),
            lambda m: _("产出量不能超过投入的 %(kg)s kg 废活性炭", **m),
        ),
        (
            re.compile(
                rf"line {n('line')} of manifest (?P<number>\d+) has {n('left')} kg received and not yet consumed; .*"
            ),
            lambda m: _("联单 %(number)s 第 %(line)s 行只剩 %(left)s kg 可用", **m),
        ),
        (re.compile(rf"unknown regeneration batch {n('id')}"), lambda m: _("没有编号为 %(id)s 的再生批次", **m)),
        (
            re.compile(rf"batch (?P<no>.+) has {n('left')} kg of regenerated carbon left; {n('kg')} kg filled"),
            lambda m: _("再生批次 %(no)s 只剩 %(left)s kg，装填了 %(kg)s kg", **m),
        ),
        (
            re.compile(rf"batch (?P<no>.+) was measured at {n('iodine')} mg/g; a fill of it cannot have more"),
            lambda m: _("再生批次 %(no)s 的碘值为 %(iodine)s mg/g，装填的碘值不能更高", **m),
        ),
        (
            re.compile(r"the carbon of batch (?P<no>.+) comes from (?P<plant>.+) \(organisation \d+\)"),
            lambda m: _("再生批次 %(no)s 的活性炭来自 %(plant)s", **m),
        ),
        # Unusual values that need a confirmation (app/common/confirmations.py).
        (
            re.compile(rf"unusual: outside the usual {n('min')}–{n('max')} mg/g"),
            lambda m: _("不常见：超出常见范围 %(min)s–%(max)s mg/g", **m),
        ),
        (
            re.compile(rf"unusual: more than {n('ratio')} × the box's design fill \({n('design')} kg\)"),
            lambda m: _("不常见：超过碳箱设计装填量（%(design)s kg）的 %(ratio)s 倍", **m),
        ),
        (
            re.compile(
                rf"unusual: more than the box held \({n('held')} kg of carbon \+ {n('share')}% adsorbed = {n('most')} kg\)"
            ),
            lambda m: _("不常见：超过碳箱可容纳的量（装填 %(held)s kg + 吸附 %(share)s%% = %(most)s kg）", **m),
        ),
        (
            re.compile(rf"unusual: more than {n('ratio')} × the {n('shipped')} kg shipped"),
            lambda m: _("不常见：超过联单数量 %(shipped)s kg 的 %(ratio)s 倍", **m),
        ),
        (
            re.compile(rf"unusual: more than {n('max')} kg in one record"),
            lambda m: _("不常见：单条记录超过 %(max)s kg", **m),
        ),
        # Date bounds against the stored history (the services name the bound).
        (
            re.compile(r"cannot be before (?P<bound>[\d-]+) \(the box was registered on (?P<registered>[\d-]+)\)"),
            lambda m: _("不能早于 %(bound)s（碳箱登记于 %(registered)s）", **m),
        ),
        (
            re.compile(
                r"cannot be before (?P<bound>[\d-]+) \(the enterprise was registered on (?P<registered>[\d-]+)\)"
            ),
            lambda m: _("不能早于 %(bound)s（企业登记于 %(registered)s）", **m),
        ),
        (
            re.compile(r"must be after the previous fill \((?P<bound>[\d: -]+)\)"),
            lambda m: _("必须晚于上一次装填时间 %(bound)s", **m),
        ),
        (
            re.compile(r"cannot be before its inputs were received \((?P<bound>[\d-]+)\)"),
            lambda m: _("不能早于投入废炭的接收日期 %(bound)s", **m),
        ),
    ]


def localise_message(message: str) -> str:
    """marshmallow's default message in the page's language; any other message unchanged."""
    key = str(message).strip().rstrip(".")
    for pattern, make in _patterns():
        # Case-insensitive, and the values keep their case (a batch number, a plant's name).
        match = re.fullmatch(pattern.pattern, key, re.IGNORECASE)
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
