"""The regulator's lists: red and yellow boxes, overdue / discrepant / rejected manifests, the
mass-balance anomalies with their figures; each filtered by county, park and enterprise, searched,
sorted, paged, and downloadable as CSV or XLSX with exactly the page's filters.

Thin: read the query string, call the services (app/boxes/services/lists.py,
app/ledger/services/registry_lists.py, app/statistics/services/anomaly_figures.py), whose scopes decide
what the user may see; a filter naming something outside the jurisdiction is "not found" (404).
For regulators, park administrations and operators; other users get 403.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required

from app.accounts.services import Principal
from app.boxes.services import lists as box_lists
from app.common.auth import require_user
from app.common.timeutil import to_local_str, utcnow
from app.common.tx import commit_read_effects
from app.extensions import db
from app.ledger.services import registry_lists
from app.statistics.services import anomaly_figures
from app.web import paging, table_export
from app.web.names import anomaly_names, colour_names, flag_names, rule_reason, state_names

bp = Blueprint("regulator", __name__, template_folder="../templates")


def is_overseer(principal: Principal) -> bool:
    return principal.is_operator or principal.has_role("regulator") or principal.has_role("park_admin")


def _refuse(status: int):
    if status == 403:
        return render_template(
            "error.html", status=403, title=_("无权查看"), detail=_("此页面仅供生态环境监管部门和园区管委会使用。")
        ), 403
    return render_template("error.html", status=404, title=_("未找到"), detail=_("所选范围不存在，或您无权查看。")), 404


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 10 else None


def _choice(name: str, allowed: tuple[str, ...]) -> str:
    """The value asked for when it is one of ``allowed``, else the first (the default)."""
    value = request.args.get(name) or ""
    return value if value in allowed else allowed[0]


def _scope_filters(principal: Principal) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """county / park / enterprise asked for, the filter's choices (narrowed by them), and whether
    each lies within the user's jurisdiction (the enterprise checked by one query, since a city's
    10,000 are not all listed as choices)."""
    county = (request.args.get("county") or "").strip()[:12] or None
    park, enterprise = _int_arg("park"), _int_arg("enterprise")
    choices = box_lists.filter_choices(db.session(), principal, county=county, park=park)
    ok = (
        (county is None or county in {c.code for c in choices["counties"]})
        and (park is None or park in {p.id for p in choices["parks"]})
        and (enterprise is None or box_lists.may_filter_by(db.session(), principal, enterprise))
    )
    scope = {"county": county, "park": park, "enterprise": enterprise, "q": (request.args.get("q") or "")[:60]}
    return scope, choices, ok


# A text stored in both languages, "中文 (English)" (the demo's and the API's refusal reasons).
_BILINGUAL = re.compile(r"(?P<zh>.*[\u3400-\u9fff].*?) \((?P<en>[\x20-\x7e]+)\)")


def own_language(text: str) -> str:
    """A "中文 (English)" text as its half in the page's language; any other text as written."""
    match = _BILINGUAL.fullmatch(text or "")
    if match is None:
        return text
    return match["zh"] if str(get_locale() or "zh") == "zh" else match["en"]


def county_name(county) -> str:
    if county is None:
        return ""
    return county.name_en if str(get_locale() or "zh") != "zh" and county.name_en else county.name


def _download(kind: str, stem: str, title: str, header: list[str], rows: list[list[Any]]):
    stamp = to_local_str(utcnow(), "%Y%m%d")
    if kind == "csv":
        body, mime = table_export.to_csv(header, rows), "text/csv"
    else:
        body, mime = table_export.to_xlsx(title, header, rows), table_export.XLSX_MIME
    disposition = table_export.content_disposition(f"{stem}_{stamp}.{kind}", f"{title}_{stamp}.{kind}")
    return Response(body, mimetype=mime, headers={"Content-Disposition": disposition})


def _export_kind() -> str | None:
    kind = request.args.get("format")
    return kind if kind in ("csv", "xlsx") else None


def _query_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in request.args.items() if k not in names and v}


@bp.app_context_processor
def _helpers():
    return {"county_name": county_name, "list_query": _query_without, "own_language": own_language}


# ---------------------------------------------------------------- red and yellow boxes


def box_reasons(box) -> list[str]:
    """The stored reasons in words, the box's own colour first (never the raw rule codes)."""
    reasons = sorted(box.colour_reasons or [], key=lambda r: 0 if r.get("level") == box.colour else 1)
    return [rule_reason(r) for r in reasons]


@bp.route("/oversight/boxes/<colour>")
@login_required
def boxes(colour: str):
    principal = require_user()
    if not is_overseer(principal):
        return _refuse(403)
    if colour not in box_lists.LIST_COLOURS:
        return _refuse(404)
    now = utcnow()
    scope, choices, ok = _scope_filters(principal)
    if not ok:
        return _refuse(404)
    sort = _choice("sort", box_lists.SORTS)
    filters = box_lists.BoxFilters(**scope, sort=sort)
    kind = _export_kind()
    with paging.cursor_checked():
        result = box_lists.colour_list(
            db.session(),
            principal,
            colour,
            filters,
            now,
            cursor=None if kind else paging.cursor_arg(),
            per_page=box_lists.SORT_LIMIT if kind else box_lists.PER_PAGE,
        )
    commit_read_effects(db.session())  # colours that time alone changed (refresh_due)
    if kind:
        header = [
            _("碳箱码"),
            _("企业"),
            _("园区"),
            _("县（市、区）"),
            _("颜色"),
            _("持续天数"),
            _("饱和度 (%)"),
            _("原因"),
        ]
        rows = [
            [
                r.box.code,
                r.box.enterprise.name,
                r.box.enterprise.park.name if r.box.enterprise.park else "",
                county_name(r.box.enterprise.county),
                colour_names()[r.box.colour],
                round(r.days, 1) if r.days is not None else None,
                round(r.saturation * 100, 1) if r.saturation is not None else None,
                "；".join(box_reasons(r.box)) if str(get_locale() or "zh") == "zh" else "; ".join(box_reasons(r.box)),
            ]
            for r in result.rows
        ]
        title = _("%(colour)s碳箱", colour=colour_names()[colour])
        return _download(kind, f"{colour}_boxes", title, header, rows)
    return render_template(
        "reg_boxes.html",
        result=result,
        colour=colour,
        filters=filters,
        choices=choices,
        reasons_of=box_reasons,
        sorts={"days": _("持续天数"), "enterprise": _("企业"), "saturation": _("饱和度")},
    )


# ---------------------------------------------------------------- manifests


@bp.route("/oversight/manifests/<flag>")
@login_required
def manifests(flag: str):
    principal = require_user()
    if not is_overseer(principal):
        return _refuse(403)
    if flag not in registry_lists.LIST_FLAGS:
        return _refuse(404)
    now = utcnow()
    scope, choices, ok = _scope_filters(principal)
    if not ok:
        return _refuse(404)
    sort = _choice("sort", registry_lists.SORTS)
    filters = registry_lists.ManifestFilters(**scope, sort=sort)
    kind = _export_kind()
    with paging.cursor_checked():
        result = registry_lists.flagged_manifests(
            db.session(),
            principal,
            flag,
            filters,
            now,
            cursor=None if kind else paging.cursor_arg(),
            per_page=registry_lists.EXPORT_LIMIT if kind else registry_lists.PER_PAGE,
        )
    if kind:
        header = [
            _("联单编号"),
            _("状态"),
            _("移出人"),
            _("园区"),
            _("县（市、区）"),
            _("接受人"),
            _("运出数量 (kg)"),
            _("接收数量 (kg)"),
            _("差异 (kg)"),
            _("提货时间"),
            _("接收期限"),
        ]
        rows = [
            [
                r.manifest.number,
                state_names()[r.manifest.status],
                r.manifest.consignor.name,
                r.manifest.consignor.park.name if r.manifest.consignor.park else "",
                county_name(r.manifest.consignor.county),
                r.manifest.receiver.name,
                r.shipped_kg,
                r.received_kg,
                r.difference_kg,
                to_local_str(r.manifest.picked_up_at) if r.manifest.picked_up_at else "",
                to_local_str(r.manifest.receipt_due_at) if r.manifest.receipt_due_at else "",
            ]
            for r in result.rows
        ]
        return _download(kind, f"{flag}_manifests", _("%(flag)s联单", flag=flag_names()[flag]), header, rows)
    return render_template(
        "reg_manifests.html",
        result=result,
        flag=flag,
        filters=filters,
        choices=choices,
        now=now,
        sorts={"due": _("接收期限"), "consignor": _("移出人"), "quantity": _("数量"), "difference": _("差异")},
        titles={"overdue": _("超期未接收的联单"), "discrepant": _("数量差异的联单"), "rejected": _("被拒收的联单")},
    )


# ---------------------------------------------------------------- mass-balance anomalies


@bp.route("/oversight/anomalies")
@login_required
def anomalies():
    principal = require_user()
    if not is_overseer(principal):
        return _refuse(403)
    scope, choices, ok = _scope_filters(principal)
    if not ok:
        return _refuse(404)
    found = anomaly_figures.anomaly_figures(
        db.session(),
        principal,
        enterprise=scope["enterprise"],
        county=scope["county"],
        park=scope["park"],
        now=utcnow(),
    )
    return render_template(
        "reg_anomalies.html",
        found=found,
        filters=scope,
        choices=choices,
        anomaly_names=anomaly_names(),
        value_names=anomaly_value_names(),
    )


def anomaly_value_names() -> dict[str, str]:
    """The words for the figures each anomaly carries (its ``values`` and ``thresholds``)."""
    return {
        "replacements": _("更换次数"),
        "filled_kg": _("被换下活性炭装填量 (kg)"),
        "removed_kg": _("称重废炭 (kg)"),
        "ratio": _("比例"),
        "min_ratio": _("最低比例"),
        "batches": _("产生批次"),
        "on_site_kg": _("在厂内 (kg)"),
        "oldest_days": _("最久贮存 (天)"),
        "storage_limit_days": _("贮存期限 (天)"),
        "on_hand_kg": _("厂内贮存 (kg)"),
        "max_on_site_kg": _("贮存点上限 (kg)"),
        "manifests": _("联单数"),
        "quantity_kg": _("数量 (kg)"),
        "receipt_working_days": _("接收期限 (工作日)"),
        "shipped_kg": _("运出 (kg)"),
        "received_kg": _("接收 (kg)"),
    }
