"""Desktop pages for signed-in users: the role dashboard, ledger and stock, manifests, box detail.

Beside it: the translatable code names (app/web/names.py), the template filters
(app/web/filters.py) and the box page's chart (app/web/chart.py).

Thin, like app/web/views.py: read the query string, call the domain services (whose scoping
decides what the user may see), render. Another tenant's manifest or box is "not found" (404),
the same answer the API gives.

Over ~400 lines because every page handler of the signed-in desktop stays beside the others
(one blueprint, one set of shared helpers); the helpers that could leave have left (names, filters, chart).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import lazyload

from app.accounts.models import Organization
from app.accounts.services import Principal, enterprise_scope, list_organizations
from app.boxes import presenters
from app.boxes import services as box_services
from app.boxes.models import Box, Colour, Fill
from app.common.auth import current_principal
from app.common.errors import NotFound
from app.common.pagination import count_upto
from app.common.timeutil import from_db, utcnow
from app.common.tx import commit_read_effects
from app.extensions import db
from app.ledger import services as ledger_services
from app.ledger.models import LedgerRecord, Manifest
from app.regeneration import services as regeneration_services
from app.statistics.services import oversight
from app.statistics.services.anomalies import anomalies as find_anomalies
from app.telemetry import services as telemetry_services
from app.web import paging
from app.web.chart import concentration_chart
from app.web.filters import FILTERS, isotime_filter, kg_filter, tonnes_filter  # noqa: F401 (re-exported)
from app.web.names import (
    acceptance_names,
    action_names,
    anomaly_names,
    box_event_names,
    box_status_names,
    colour_names,
    flag_names,
    management_class_names,
    party_names,
    role_names,
    rule_reason,
    stage_names,
    state_names,
)

bp = Blueprint("pages", __name__, template_folder="../templates")

COLOURS = Colour.by_severity(descending=True)  # red first: the one definition is app.boxes.models.Colour
PER_PAGE = 50
OPEN_STATES = ("draft", "submitted", "in_transit", "received")


@bp.app_context_processor
def _page_helpers():
    return {
        "colour_names": colour_names,
        "stage_names": stage_names,
        "state_names": state_names,
        "flag_names": flag_names,
        "nav_links": nav_links,
        "rule_reason": rule_reason,
    }


def nav_links() -> list[tuple[str, str, str]]:
    """(endpoint, url, label) of the top bar for the signed-in user."""
    if not (current_user and current_user.is_authenticated):
        return []
    principal = Principal(user=current_user._get_current_object())
    links = [
        ("pages.dashboard", url_for("pages.dashboard"), _("工作台")),
        ("web.boxes_page", url_for("web.boxes_page"), _("碳箱")),
        ("pages.manifests", url_for("pages.manifests"), _("联单")),
    ]
    if principal.is_operator or any(principal.has_role(r) for r in ("generator", "regulator", "park_admin")):
        links += [
            ("pages.ledger", url_for("pages.ledger"), _("台账")),
            ("pages.stock", url_for("pages.stock"), _("库存")),
        ]
    if any(principal.has_role(r) for r in ("receiver", "regenerator")):
        links.append(("receiving.incoming", url_for("receiving.incoming"), _("接收")))
    if principal.is_operator or any(principal.has_role(r) for r in ("regenerator", "regulator")):
        links.append(("regeneration_pages.batches", url_for("regeneration_pages.batches"), _("再生")))
    if principal.is_operator or any(principal.has_role(r) for r in ("regulator", "park_admin")):
        links.append(("statistics_pages.statistics_page", url_for("statistics_pages.statistics_page"), _("统计")))
    if principal.is_operator or principal.has_role("regulator"):
        links.append(("index_pages.index_page", url_for("index_pages.index_page"), _("协同指数")))
        links.append(("revision_pages.revisions", url_for("revision_pages.revisions"), _("更正申请")))
    if principal.is_operator or principal.organization is not None:  # every party may export its registry
        links.append(("job_pages.job_list", url_for("job_pages.job_list"), _("导出任务")))
    return links


# Template filters, app-wide (app/web/filters.py).
for _name, _filter in FILTERS.items():
    bp.add_app_template_filter(_filter, _name)


# ---------------------------------------------------------------- helpers


def _not_found(detail: str):
    return render_template("error.html", status=404, title=_("未找到"), detail=detail), 404


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 10 else None


def _date_arg(name: str, errors: dict[str, str]) -> date | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = _("日期格式应为 YYYY-MM-DD：%(value)s", value=raw)
        return None


def _colour_counts(query) -> dict[str, int]:
    """Boxes of a (scoped) query per colour."""
    sub = query.order_by(None).subquery()
    counts: dict[str, int] = dict(db.session.execute(select(sub.c.colour, func.count()).group_by(sub.c.colour)).all())
    return {c: counts.get(c, 0) for c in COLOURS}


def _count(query) -> int:
    return db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def _payloads(boxes: list[Box], now: datetime) -> list[dict[str, Any]]:
    # The stored evaluations' fills in one statement: view_boxes takes each from the session's
    # identity map (held here while it runs) instead of one SELECT per box.
    fill_ids = sorted({f for b in boxes if (f := (b.colour_detail or {}).get("fill_id")) is not None})
    fills = list(db.session.scalars(select(Fill).where(Fill.id.in_(fill_ids)))) if fill_ids else []
    payloads = [presenters.box_payload(v) for v in box_services.view_boxes(db.session(), boxes, now)]
    del fills
    return payloads


def _manifest_flags(manifest: Manifest, now: datetime) -> list[str]:
    flags = []
    if manifest.is_overdue(now):
        flags.append("overdue")
    if manifest.discrepant:
        flags.append("discrepant")
    if manifest.late_entry:
        flags.append("late")
    if manifest.status == "rejected":
        flags.append("rejected")
    return flags


def _manifest_rows(manifests: list[Manifest], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "m": m,
            "flags": _manifest_flags(m, now),
            "shipped_kg": sum(line.quantity_kg for line in m.lines),
            "received_kg": (
                sum(line.received_kg or 0 for line in m.lines)
                if any(line.received_kg is not None for line in m.lines)
                else None
            ),
        }
        for m in manifests
    ]


def _manifest_list(
    principal: Principal,
    now: datetime,
    limit: int = 8,
    statuses: tuple[str, ...] = (),
    capped: bool = False,
    **filters,
) -> dict[str, Any]:
    """The first ``limit`` manifests of a list and its total; ``capped``: the total counted up to
    COUNT_CAP ("1,000+" beyond, as on the list it links to), for a regulator's 10⁶ manifests."""
    query = ledger_services.list_manifests(db.session(), principal, now=now, **filters)
    if statuses:
        query = query.where(Manifest.status.in_(statuses))
    total = count_upto(db.session(), query) if capped else _count(query)
    # The rows show their lines (selectin, one statement); their events and signatures are not shown.
    shown = query.options(lazyload(Manifest.events), lazyload(Manifest.signatures)).limit(limit)
    return {"total": total, "rows": _manifest_rows(list(db.session.scalars(shown)), now)}


# ---------------------------------------------------------------- the dashboard

DASHBOARD_ANOMALIES = 20  # a city has thousands of enterprises: the rest are on the anomalies page


def _first_anomalies(found: dict[str, Any]) -> dict[str, Any]:
    return {**found, "items": found["items"][:DASHBOARD_ANOMALIES], "total": len(found["items"])}


@bp.route("/")
def dashboard():
    """Signed in: the dashboard of the user's roles. Anonymous: the sign-in page."""
    principal = current_principal(optional=True)
    if principal is None:
        return redirect(url_for("web.login"))
    now = utcnow()
    org = principal.organization
    roles = set(org.roles) if org else set()
    sections: dict[str, Any] = {}
    box_services.refresh_due(db.session(), now)
    boxes = box_services.list_boxes(db.session(), principal)

    if principal.is_operator or roles & {"regulator", "park_admin"}:
        # The longest red first: an index range on (colour, colour_since, id), 20 rows read.
        red = boxes.where(Box.colour == "red").order_by(None).order_by(Box.colour_since, Box.id)
        colours = oversight.box_colours(db.session(), principal)
        sections["oversight"] = {
            "colours": colours,
            "red_total": colours["red"],
            "red": _payloads(list(db.session.scalars(red.limit(20))), now),
            "overdue": _manifest_list(principal, now, flag="overdue", capped=True),
            "discrepant": _manifest_list(principal, now, flag="discrepant", capped=True),
            "rejected": _manifest_list(principal, now, flag="rejected", capped=True),
            "anomalies": _first_anomalies(find_anomalies(db.session(), principal, now=now)),
        }
    if "generator" in roles:
        assert org is not None  # roles are the organisation's
        own = boxes.where(Box.enterprise_id == org.id)
        records = (
            ledger_services.ledger_query(db.session(), principal, org.id)
            .order_by(None)
            .order_by(LedgerRecord.occurred_at.desc(), LedgerRecord.id.desc())
        )
        sections["enterprise"] = {
            "colours": _colour_counts(own),
            "attention": _payloads(
                list(
                    db.session.scalars(
                        own.where(Box.colour.in_(("red", "yellow")))
                        .order_by(None)
                        .order_by(Box.colour, Box.colour_since)
                        .limit(10)
                    )
                ),
                now,
            ),
            "stock": ledger_services.stock_summary(db.session(), principal, org.id, now),
            "records": list(db.session.scalars(records.limit(10))),
            "open": _manifest_list(principal, now, limit=10, statuses=OPEN_STATES, party="consignor"),
        }
    if roles & {"supplier", "regenerator"}:
        assert org is not None  # roles are the organisation's
        served = boxes.where(Box.service_org_id == org.id)
        due = served.where(Box.colour.in_(("red", "yellow"))).order_by(None).order_by(Box.colour, Box.colour_since)
        colours = _colour_counts(served)
    if roles & {"supplier", "regenerator"} and (sum(colours.values()) or "regenerator" not in roles):
        # A plant that serves no boxes itself is not shown an empty box panel.
        sections["service"] = {
            "colours": colours,
            "due_total": _count(due),
            "due": _payloads(list(db.session.scalars(due.limit(20))), now),
        }
    if roles & {"receiver", "regenerator"}:
        sections["receiver"] = {
            "to_receive": _manifest_list(principal, now, limit=10, status="in_transit", party="receiver"),
            "to_process": _manifest_list(principal, now, limit=10, status="received", party="receiver"),
        }
    if "regenerator" in roles:
        assert org is not None  # roles are the organisation's
        batches = regeneration_services.list_batches(db.session(), principal, plant=org.id)
        sections["regeneration"] = {"total": _count(batches), "batches": list(db.session.scalars(batches.limit(10)))}
    if "carrier" in roles:
        sections["carrier"] = {
            "to_pick_up": _manifest_list(principal, now, limit=10, status="submitted", party="carrier"),
            "in_transit": _manifest_list(principal, now, limit=10, status="in_transit", party="carrier"),
        }
    commit_read_effects(db.session())  # colours refreshed on read
    return render_template(
        "dash_home.html",
        principal=principal,
        org=org,
        sections=sections,
        now=now,
        roles=[role_names().get(r, r) for r in sorted(roles)],
        anomaly_names=anomaly_names(),
        box_total=sum(sections.get("oversight", {}).get("colours", {}).values()),
    )


# ---------------------------------------------------------------- ledger and stock


def _enterprise_choices(principal: Principal) -> list[Organization]:
    """The enterprises a regulator, park or operator may pick (their jurisdiction's generators)."""
    query = list_organizations(db.session(), principal, role="generator").where(enterprise_scope(principal))
    return list(db.session.scalars(query.order_by(None).order_by(Organization.county_code, Organization.name)))


def _chosen_enterprise(principal: Principal) -> tuple[int | None, list[Organization]]:
    """The enterprise asked for (``?enterprise=``), or the user's own when it is one."""
    chosen = _int_arg("enterprise")
    own = principal.organization
    if chosen is None and own is not None and own.has_role("generator"):
        chosen = own.id
    choices = (
        []
        if (
            own is not None
            and own.has_role("generator")
            and not (principal.is_operator or own.has_role("regulator") or own.has_role("park_admin"))
        )
        else _enterprise_choices(principal)
    )
    return chosen, choices


@bp.route("/ledger")
@login_required
def ledger():
    principal = current_principal()
    enterprise_id, choices = _chosen_enterprise(principal)
    errors: dict[str, str] = {}
    start, end = _date_arg("from", errors), _date_arg("to", errors)
    stage = request.args.get("stage") or None
    if stage not in stage_names():
        stage = None
    context: dict[str, Any] = {
        "choices": choices,
        "enterprise_id": enterprise_id,
        "errors": errors,
        "stage": stage,
        "start": start,
        "end": end,
    }
    if enterprise_id is None:
        return render_template(
            "ledger_list.html", enterprise=None, records=[], page=None, total=0, totals={}, **context
        )
    try:
        query = ledger_services.ledger_query(db.session(), principal, enterprise_id, start=start, end=end, stage=stage)
    except NotFound:
        return _not_found(_("单位不存在或无权查看。"))
    # The tiles' sums per stage read every record of the filter anyway: the count comes with them
    # (one scan, exact), not from a second count(*).
    sub = query.order_by(None).subquery()
    per_stage = db.session.execute(
        select(sub.c.stage, func.sum(sub.c.quantity_kg), func.count()).group_by(sub.c.stage)
    ).all()
    totals: dict[str, Any] = {str(row[0]): row[1] for row in per_stage}
    total = sum(int(row[2]) for row in per_stage)
    page = paging.keyset_page(
        query.order_by(None).order_by(LedgerRecord.occurred_at.desc(), LedgerRecord.id.desc()), PER_PAGE
    )
    records = page.items
    enterprise = ledger_services.visible_enterprise(db.session(), principal, enterprise_id)
    methods = ledger_services.methods(db.session())
    return render_template(
        "ledger_list.html",
        enterprise=enterprise,
        records=records,
        page=page,
        total=total,
        totals=totals,
        methods=methods,
        **context,
    )


@bp.route("/stock")
@login_required
def stock():
    principal = current_principal()
    enterprise_id, choices = _chosen_enterprise(principal)
    if enterprise_id is None:
        return render_template("ledger_stock.html", summary=None, choices=choices, enterprise_id=None)
    try:
        summary = ledger_services.stock_summary(db.session(), principal, enterprise_id, utcnow())
    except NotFound:
        return _not_found(_("单位不存在或无权查看。"))
    return render_template(
        "ledger_stock.html",
        summary=summary,
        choices=choices,
        enterprise_id=enterprise_id,
        class_names=management_class_names(),
    )


# ---------------------------------------------------------------- manifests


@bp.route("/manifests")
@login_required
def manifests():
    principal = current_principal()
    now = utcnow()
    status = request.args.get("status") or None
    if status not in state_names():
        status = None
    flag = request.args.get("flag") or None
    if flag not in flag_names():
        flag = None
    query = ledger_services.list_manifests(db.session(), principal, status=status, flag=flag, now=now)
    page = paging.keyset_page(query, PER_PAGE)
    return render_template(
        "manifest_list.html",
        rows=_manifest_rows(page.items, now),
        total=count_upto(db.session(), query),  # "1,000+" past the cap: no count(*) over 10⁶ manifests
        page=page,
        status=status,
        flag=flag,
        registry_views=_registry_views(principal),
    )


def _registry_views(principal) -> list[tuple[str, str]]:
    """The registry views (app/ledger/registry_views.py) the caller has a part in, with their names."""
    org = principal.organization
    if principal.is_operator or (org is not None and org.has_role("regulator")):
        return [("managed", _("辖区联单台账"))]
    if org is None:
        return []
    return [("outgoing", _("移出台账")), ("incoming", _("接收台账")), ("transported", _("运输台账"))]


def _event_details(detail: dict[str, Any]) -> list[str]:
    out = []
    if detail.get("vehicle_plate"):
        out.append(_("车牌 %(plate)s", plate=detail["vehicle_plate"]))
    if detail.get("driver_name"):
        out.append(_("驾驶员 %(name)s", name=detail["driver_name"]))
    if detail.get("acceptance"):
        out.append(acceptance_names().get(detail["acceptance"], detail["acceptance"]))
    for line in detail.get("lines") or []:
        if line.get("received_kg") is not None:
            out.append(_("第 %(no)s 行称重 %(kg)s kg", no=line.get("line_no"), kg=kg_filter(line["received_kg"])))
        if line.get("method_code"):
            out.append(_("第 %(no)s 行方式 %(code)s", no=line.get("line_no"), code=line["method_code"]))
    if detail.get("reason"):
        out.append(_("原因：%(reason)s", reason=detail["reason"]))
    if detail.get("returned_kg"):
        out.append(_("退回 %(kg)s kg", kg=kg_filter(detail["returned_kg"])))
    if detail.get("late"):
        out.append(_("补录超期"))
    return out


@bp.route("/manifests/<number>")
@login_required
def manifest_detail(number):
    principal = current_principal()
    now = utcnow()
    try:
        manifest = ledger_services.get_manifest(db.session(), principal, number)
    except NotFound:
        return _not_found(_("联单 %(number)s 不存在，或您无权查看。", number=number))
    events = [{"e": e, "details": _event_details(e.detail or {})} for e in manifest.events]
    return render_template(
        "manifest_detail.html",
        m=manifest,
        flags=_manifest_flags(manifest, now),
        events=events,
        methods=ledger_services.methods(db.session()),
        action_names=action_names(),
        party_names=party_names(),
        acceptance_names=acceptance_names(),
        now=now,
        shipped_kg=sum(line.quantity_kg for line in manifest.lines),
    )


# ---------------------------------------------------------------- box detail


@bp.route("/boxes/<code>")
@login_required
def box_detail(code):
    principal = current_principal()
    now = utcnow()
    try:
        box = box_services.get_box(db.session(), principal, code)
    except NotFound:
        return _not_found(_("碳箱 %(code)s 不存在，或您无权查看。", code=code))
    view = box_services.view_box(db.session(), box, now)
    payload = presenters.box_payload(view)
    hist = box_services.history(db.session(), box)
    changes = hist["colour_changes"]
    segments = []
    for i, change in enumerate(changes):
        until = from_db(changes[i + 1].changed_at) if i + 1 < len(changes) else now
        segments.append(
            {
                "c": change,
                "until": until if i + 1 < len(changes) else None,
                "days": (until - from_db(change.changed_at)).total_seconds() / 86400,
            }
        )
    created = from_db(box.created_at)
    month_ago = now - timedelta(days=30)
    days = {
        c: {
            "all": box_services.days_in_colour(changes, c, created, now),
            "month": box_services.days_in_colour(changes, c, max(month_ago, created), now),
        }
        for c in COLOURS
    }
    chart = None
    if box.has_sensors:
        start = now - timedelta(hours=48)
        rows = telemetry_services.rollup_readings(db.session(), box, start, now, "hour")
        chart = concentration_chart(rows, start, now, box.emission_limit_mg_m3)
    commit_read_effects(db.session())  # the colour refreshed on read
    return render_template(
        "dash_box.html",
        box=box,
        p=payload,
        segments=list(reversed(segments)),
        days=days,
        fills=list(reversed(hist["fills"])),
        events=list(reversed(hist["events"])),
        chart=chart,
        now=now,
        event_names=box_event_names(),
        status_names=box_status_names(),
        can_fill=box_services.can_service(principal, box),
    )
