"""Exports the ``export`` job kind can run today: the statistics of a park, county or the city
(the same CSV/XLSX as ``/api/v1/…/metrics.csv|.xlsx``, app/statistics/exports.py).

Each is an :class:`app.jobs.kinds.ExportKind` the wiring lists by name (``job_exports``); the
streaming registry exports join them there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from flask import current_app
from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.common.timeutil import utcnow
from app.jobs.kinds import ExportKind, ExportMeta
from app.jobs.schemas import StatisticsExportParams
from app.statistics import exports as statistics_exports
from app.statistics import services as statistics

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIME = "text/csv; charset=utf-8"


def _scope(session: Session, params: dict[str, Any]) -> statistics.Scope:
    ident = {"park": params.get("park_id"), "county": params.get("county_code")}.get(params["scope"])
    return statistics.resolve_scope(session, params["scope"], ident)


def authorise_statistics(session: Session, actor: Principal, params: dict[str, Any]) -> None:
    """As the download would answer: 404 unknown scope, 403 outside the jurisdiction, 422 period."""
    statistics.authorise(actor, _scope(session, params))
    statistics.check_not_future(statistics.parse_period(params["period"]), utcnow())


def write_statistics(
    session: Session,
    actor: Principal,
    params: dict[str, Any],
    fmt: str,
    out: IO[bytes],
    report: Callable[[int, int | None], None],
) -> ExportMeta:
    report(0, 2)
    scope = _scope(session, params)
    # As the download's default: the app's STATISTICS_BASE_YEAR (the service's own when unset).
    base_year = params.get("base_year") or current_app.config.get("STATISTICS_BASE_YEAR")
    m = statistics.metrics(session, actor, scope, params["period"], int(base_year) if base_year else None)
    report(1, 2)
    if fmt == "csv":
        out.write(statistics_exports.to_csv(m))
        mime = CSV_MIME
    else:
        series = statistics.landfill_series(session, scope, statistics.parse_period(params["period"]), 12)
        out.write(statistics_exports.to_xlsx(m, series))
        mime = XLSX_MIME
    report(2, 2)
    ascii_name, utf8_name = statistics_exports.filename(m, fmt)
    return ExportMeta(ascii_name, utf8_name, mime)


STATISTICS = ExportKind(
    name="statistics",
    params_schema=StatisticsExportParams,
    authorise=authorise_statistics,
    write=write_statistics,
    title_zh="统计报表",
    title_en="Statistics",
)
