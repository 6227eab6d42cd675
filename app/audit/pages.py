"""The audit trail and the signatures on pages: template helpers for the manifest and box pages
(their include templates call them, so the pages' views need no change) and the consignor's
"hand-over code" button. Thin: the rules are in :mod:`app.audit.services` and
:mod:`app.audit.signatures`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from app.audit import services, signatures
from app.audit.models import AuditEntry
from app.common.auth import current_principal, require_user
from app.common.errors import DomainError, InvalidInput
from app.common.pagination import BadPageCursor, CappedCount, KeysetPage, count_upto, keyset_pages
from app.common.timeutil import to_local_str
from app.common.tx import rollback_request
from app.extensions import db
from app.translations import localise_error

bp = Blueprint("audit_pages", __name__, template_folder="../templates")

TRAIL_PER_PAGE = 100


def _table_names() -> dict[str, str]:
    return {
        "manifests": _("联单"),
        "manifest_lines": _("联单明细"),
        "manifest_line_sources": _("联单来源批次"),
        "manifest_events": _("流转记录"),
        "manifest_signatures": _("电子签名"),
        "handover_codes": _("交接码"),
        "ledger_records": _("台账记录"),
        "boxes": _("碳箱"),
        "fills": _("装填记录"),
        "box_events": _("碳箱事件"),
        "colour_changes": _("颜色变化"),
        "sensors": _("传感器"),
        "sensor_readings": _("传感器读数"),
    }


def _column_names() -> dict[str, str]:
    return {
        "status": _("状态"),
        "quantity_kg": _("数量 (kg)"),
        "received_kg": _("接收称重 (kg)"),
        "accepted_kg": _("接受 (kg)"),
        "returned_kg": _("退回 (kg)"),
        "method_code": _("利用/处置方式"),
        "vehicle_plate": _("车牌号"),
        "driver_name": _("驾驶员"),
        "driver_phone": _("联系电话"),
        "submitted_at": _("提交时间"),
        "picked_up_at": _("提货时间"),
        "received_at": _("接收时间"),
        "processed_at": _("利用/处置时间"),
        "closed_at": _("关闭时间"),
        "rejected_at": _("拒收时间"),
        "cancelled_at": _("作废时间"),
        "reject_reason": _("拒收原因"),
        "refusal_reason": _("拒收原因"),
        "acceptance": _("接收结果"),
        "route": _("运输路线"),
        "note": _("备注"),
        "mass_kg": _("装填量 (kg)"),
        "removed_waste_kg": _("称重的废炭量 (kg)"),
        "step": _("步骤"),
        "action": _("操作"),
        "party": _("当事方"),
        "method": _("签名方式"),
        "colour": _("颜色"),
        "previous_colour": _("原颜色"),
        "from_status": _("原状态"),
        "to_status": _("新状态"),
        "at": _("时间"),
        "signer_name": _("签名人"),
        "content_sha256": _("内容哈希"),
        "used_at": _("使用时间"),
        "expires_at": _("有效期至"),
    }


def _action_names() -> dict[str, str]:
    return {"insert": _("新增"), "update": _("修改"), "delete": _("删除"), "import": _("导入"), "ingest": _("数据接入")}


def _interface_names() -> dict[str, str]:
    return {"page": _("网页"), "api": _("接口"), "mqtt": _("物联网消息"), "cli": _("命令行"), "system": _("系统")}


def _value_names() -> dict[str, dict[str, str]]:
    """Coded values in words, by column (states, methods, parties, colours)."""
    from app.ledger.models import STATE_ZH
    from app.ledger.pdf import ACTION_ZH

    states = {code: _(zh) for code, zh in STATE_ZH.items()}
    states |= {"active": _("在用"), "stopped": _("停用"), "decommissioned": _("已报废")}
    colours = {"grey": _("灰码"), "green": _("绿码"), "yellow": _("黄码"), "red": _("红码")}
    parties = {"consignor": _("移出人"), "carrier": _("承运人"), "receiver": _("接受人"), "operator": _("平台运维")}
    return {
        "status": states,
        "from_status": states,
        "to_status": states,
        "colour": colours,
        "previous_colour": colours,
        "method": method_names(),
        "step": step_names(),
        "party": parties,
        "action": {code: _(zh) for code, zh in ACTION_ZH.items()},
        "acceptance": {"full": _("全部接收"), "partial": _("部分接收"), "refused": _("拒收")},
    }


def _show(column: str, value: Any, coded: dict[str, dict[str, str]]) -> str | None:
    """A value in words; None when it has no words to show (structured data)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return _("是") if value else _("否")
    if column in coded:
        return coded[column].get(str(value))
    if (column == "at" or column.endswith("_at")) and isinstance(value, str):
        try:  # the trail holds UTC without an offset (app.audit.canonical)
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return to_local_str(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _changes(item: dict[str, Any]) -> list[str]:
    """What changed, in words: "column: before → after" (an insert: its values; a delete: what it
    held). Only the columns with a name in words are shown; the API gives every column."""
    names, coded = _column_names(), _value_names()
    before, after = item.get("before") or {}, item.get("after") or {}
    out = []
    if item["action"] == "update":
        for column in sorted(before):
            if before.get(column) == after.get(column) or column not in names:
                continue
            old, new = _show(column, before.get(column), coded), _show(column, after.get(column), coded)
            if old is not None and new is not None:
                out.append(f"{names[column]}: {old} → {new}")
    else:
        shown = after or before
        for column in sorted(shown):
            value = _show(column, shown[column], coded) if column in names else None
            if value is not None and value != "—":
                out.append(f"{names[column]}: {value}")
    return out[:8]


class Trail(list):
    """The rows of one page of a trail (a list, as the templates read it), with its pager and total."""

    page: KeysetPage | None = None
    total: CappedCount = CappedCount(0)


def audit_trail(manifest: str | None = None, box: str | None = None) -> Trail | None:
    """One page of the trail of a manifest (number) or box (code) for the signed-in reader, oldest
    first, in keyset pages (``?trail=<cursor>``: a box's trail grows with every fill and colour
    change); None when the reader may not see it (the section is then left out)."""
    from app.accounts.models import Organization

    reader = current_principal(optional=True)
    if reader is None:
        return None
    try:
        query = services.trail_query(db.session(), reader, manifest=manifest, box=box)
    except DomainError:
        return None
    cursor = request.args.get("trail") or None
    try:
        if cursor is not None and len(cursor) > 2000:
            raise InvalidInput.field("cursor", "too long")
        page = keyset_pages(db.session(), query.order_by(AuditEntry.seq), cursor, TRAIL_PER_PAGE)
    except InvalidInput as exc:
        raise BadPageCursor(str(exc), "trail") from exc
    total = count_upto(db.session(), query)  # a box's trail grows without end: "1,000+" past the cap
    items = [services.entry_out(e) for e in page.items]
    org_ids = {i["org_id"] for i in items if i["org_id"]}
    orgs = (
        dict(db.session.execute(select(Organization.id, Organization.name).where(Organization.id.in_(org_ids))).all())
        if org_ids
        else {}
    )
    tables, actions, interfaces = _table_names(), _action_names(), _interface_names()
    found = Trail(
        {
            "seq": i["seq"],
            "at": i["recorded_at"],
            "who": i["actor"] or _("系统"),
            "organization": orgs.get(i["org_id"], ""),
            "interface": interfaces.get(i["interface"], i["interface"]),
            "what": f"{actions.get(i['action'], i['action'])} {tables.get(i['table'], i['table'])}",
            "changes": _changes(i),
        }
        for i in items
    )
    found.page, found.total = page, total
    return found


def signature_checks(manifest) -> list[signatures.SignatureCheck]:
    return signatures.checks(db.session(), manifest)


def may_issue_handover_code(manifest) -> bool:
    org = getattr(current_user, "organization", None) if current_user.is_authenticated else None
    return manifest.status == "submitted" and org is not None and org.id == manifest.consignor_id


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {
        "audit_trail": audit_trail,
        "signature_checks": signature_checks,
        "may_issue_handover_code": may_issue_handover_code,
        "step_names": step_names,
        "method_names": method_names,
    }


def step_names() -> dict[str, str]:
    return {
        "submit": _("提交"),
        "pickup": _("提货"),
        "receive": _("接收"),
        "reject": _("拒收"),
        "process": _("利用/处置"),
    }


def method_names() -> dict[str, str]:
    return {"password": _("密码"), "one_time_code": _("一次性交接码")}


@bp.route("/manifests/<number>/handover-code", methods=["POST"])
@login_required
def handover_code(number):
    """A consignor's staff member asks for the one-time code to give the carrier."""
    from app.ledger.services import get_manifest

    principal = require_user()
    try:
        manifest = get_manifest(db.session(), principal, number)
        code, row = signatures.issue_handover_code(db.session(), principal, manifest)
    except DomainError as exc:
        rollback_request(db.session())
        return render_template("handover_code.html", number=number, code=None, error=localise_error(exc)), exc.status
    return render_template("handover_code.html", number=number, code=code, expires_at=row.expires_at, error=None)
