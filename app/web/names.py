"""Translatable names of the codes the pages show (colours, ledger stages, manifest states, flags,
actions, parties, roles, box events and statuses, management classes, anomalies, acceptances).

Functions, not constants: each call translates into the request's language (Flask-Babel).
Used by app/web/pages.py and, through its context processor, by the templates.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from app.common.wiring import wiring_of
from app.extensions import db
from app.translations import rule_reason as _rule_reason


def colour_names() -> dict[str, str]:
    return {"grey": _("灰码"), "green": _("绿码"), "yellow": _("黄码"), "red": _("红码")}


def stage_names() -> dict[str, str]:
    return {
        "generation": _("产生"),
        "storage": _("入库"),
        "out_of_storage": _("出库"),
        "sent_out": _("委外利用处置"),
        "returned": _("退回入库"),
    }


def state_names() -> dict[str, str]:
    return {
        "draft": _("草稿"),
        "submitted": _("已提交"),
        "in_transit": _("运输中"),
        "received": _("已接收"),
        "processed": _("已利用/处置"),
        "closed": _("已办结"),
        "rejected": _("已拒收"),
        "cancelled": _("已作废"),
    }


def flag_names() -> dict[str, str]:
    return {"overdue": _("超期未接收"), "discrepant": _("数量差异"), "late": _("补录超期"), "rejected": _("拒收")}


def action_names() -> dict[str, str]:
    return {
        "create": _("填写"),
        "submit": _("提交"),
        "pickup": _("承运人提货"),
        "receive": _("接受人接收"),
        "reject": _("接受人拒收"),
        "process": _("利用/处置"),
        "close": _("办结"),
        "cancel": _("作废"),
        "record_transfer": _("补录转移"),
        "revise": _("更正（新版本）"),
    }


def party_names() -> dict[str, str]:
    return {
        "consignor": _("移出人"),
        "carrier": _("承运人"),
        "receiver": _("接受人"),
        "operator": _("平台运维"),
        "": _("系统"),
    }


def role_names() -> dict[str, str]:
    return {
        "generator": _("产废单位"),
        "carrier": _("承运人"),
        "receiver": _("接受人"),
        "regenerator": _("再生单位"),
        "supplier": _("换炭服务"),
        "regulator": _("生态环境监管"),
        "park_admin": _("园区管委会"),
    }


def box_event_names() -> dict[str, str]:
    return {
        "registered": _("登记"),
        "status": _("状态变更"),
        "label_reprinted": _("标签重印"),
        "label_forged_scan": _("伪造标签被扫描"),
        "label_superseded_scan": _("旧标签被扫描"),
    }


def box_status_names() -> dict[str, str]:
    return {"active": _("在用"), "stopped": _("停用"), "decommissioned": _("已报废")}


def management_class_names() -> dict[str, str]:
    return {"key": _("重点监管"), "simplified": _("简化管理"), "registration": _("登记管理")}


def anomaly_names() -> dict[str, str]:
    return {
        "carbon_missing": _("活性炭去向不明"),
        "stored_too_long": _("贮存超期"),
        "storage_over_limit": _("贮存超量"),
        "shipped_not_received": _("运出未接收"),
        "received_short": _("接收短少"),
    }


def acceptance_names() -> dict[str, str]:
    return {"full": _("全部接收"), "partial": _("部分接收"), "refused": _("拒收")}


def rule_reason(reason: dict[str, Any]) -> str:
    """A stored colour reason in the page's language, by the messages of this app's colour rules."""
    rules = wiring_of(db.session()).colour_rules()
    return _rule_reason(reason, {rule.code: (rule.zh, rule.en) for rule in rules.rules})
