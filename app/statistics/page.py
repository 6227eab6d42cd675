"""The /statistics page: a park administration sees its park; regulators pick a county or park.

The period is picked, not typed: its kind (month, quarter, year) and the year, month or quarter
as selects (``kind``, ``year``, ``month``, ``quarter``); ``period=2025-Q3`` (links, the exports)
still works. The server checks either: a period that is not one, or has not begun, is refused
with a message and the current month shown. The landfill chart marks the months without data,
and the page says why for each (:func:`app.statistics.services.empty_months`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _
from flask_login import login_required

from app.accounts.services import Principal
from app.common.auth import current_principal
from app.common.errors import DomainError
from app.common.timeutil import SHANGHAI, utcnow
from app.extensions import db
from app.statistics import charts, services

pages = Blueprint("statistics_pages", __name__, template_folder="../templates")

YEARS_SHOWN = 10
KINDS = ("month", "quarter", "year")


def base_year_default() -> int:
    return int(current_app.config.get("STATISTICS_BASE_YEAR") or services.DEFAULT_BASE_YEAR)


def kind_names() -> dict[str, str]:
    return {"month": _("月度"), "quarter": _("季度"), "year": _("年度")}


def gap_reasons() -> dict[str, str]:
    return {
        "not_registered": _("本月无数据：该范围的企业尚未在平台登记"),
        "no_records": _("本月无数据：没有台账记录"),
        "not_processed": _("本月无数据：本月没有利用/处置的废物，填埋占比无从计算"),
    }


def _picked(args, now: datetime) -> str:
    """The period's text from the picker's selects, or ``period``, or the current month."""
    kind = args.get("kind")
    year = (args.get("year") or "").strip()
    if kind in KINDS and year:
        if kind == "year":
            return year
        if kind == "quarter":
            return f"{year}-Q{(args.get('quarter') or '').strip()}"
        month = (args.get("month") or "").strip()
        return f"{year}-{month.zfill(2)}" if month.isdigit() else f"{year}-{month}"
    return (args.get("period") or "").strip() or services.month_of(now).label


def picker(period: Any, now: datetime) -> dict[str, Any]:
    """The selects' choices and what is selected."""
    this_year = now.astimezone(SHANGHAI).year
    return {
        "kinds": kind_names(),
        "years": list(range(this_year, this_year - YEARS_SHOWN, -1)),
        "months": list(range(1, 13)),
        "quarters": [1, 2, 3, 4],
        "kind": period.kind,
        "year": period.year,
        "number": period.number,
    }


def _signed_in() -> Principal:
    principal = current_principal()  # login_required: never None here
    assert principal is not None
    return principal


@pages.route("/statistics")
@login_required
def statistics_page():
    principal = _signed_in()
    now = utcnow()
    scopes = services.readable_scopes(db.session(), principal)
    if not scopes:
        return render_template(
            "error.html", status=403, title=_("无权访问"), detail=_("您的单位没有可查看的统计范围。")
        ), 403
    keys = {s.key: s for s in scopes}
    scope = keys.get(request.args.get("scope") or "", scopes[0])
    error = None
    raw = _picked(request.args, now)
    try:
        period = services.parse_period(raw)
        services.check_not_future(period, now)
    except DomainError:
        # The page speaks the reader's language (the API's message is English).
        error, period = (
            _("期间 %(period)s 无效或尚未开始，已显示本月。", period=raw),
            services.month_of(now),
        )
    m = services.metrics(db.session(), principal, scope, period, base_year_default(), now)
    series = services.landfill_series(db.session(), scope, period, 12)
    gaps = services.empty_months(db.session(), scope, series)
    reasons = gap_reasons()
    api_path = {
        "park": f"/api/v1/parks/{scope.park_id}/metrics",
        "county": f"/api/v1/counties/{scope.county_code}/metrics",
        "city": "/api/v1/metrics",
    }[scope.kind]
    return render_template(
        "statistics.html",
        m=m,
        scopes=scopes,
        scope=scope,
        period=period,
        error=error,
        picker=picker(period, now),
        series=series,
        line=charts.line_chart(series, gaps),
        gaps=[{"period": label, "reason": reasons[why], "code": why} for label, why in gaps.items()],
        bars=charts.bar_chart(m["treatment"]),
        csv_url=f"{api_path}.csv?period={period.label}",
        xlsx_url=f"{api_path}.xlsx?period={period.label}",
    )
