"""Exports the ``export`` job kind can run today: the statistics of a park, county or the city
(the same CSV/XLSX as ``/api/v1/…/metrics.csv|.xlsx``, app/statistics/exports.py), and the
regulator's red and yellow box lists (as ``/oversight/boxes/<colour>?format=…`` downloads them,
app/web/table_export.py; the headers in Chinese, the pages' default language: a job has no page).

Each is an :class:`app.jobs.kinds.ExportKind` the wiring lists by name (``job_exports``); the
streaming registry exports join them there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from flask import current_app
from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.boxes.services import lists as box_lists
from app.common.errors import Forbidden, NotFound
from app.common.timeutil import to_local_str, utcnow
from app.common.wiring import wiring_of
from app.jobs.kinds import ExportKind, ExportMeta
from app.jobs.schemas import ColourBoxesExportParams, StatisticsExportParams
from app.ledger.services.registry_export import CSV_MIME, XLSX_MIME
from app.statistics import exports as statistics_exports
from app.statistics import services as statistics
from app.web import table_export


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


# ---------------------------------------------------------------- red and yellow boxes

COLOUR_ZH = {"red": "红码", "yellow": "黄码"}
BOX_HEADER = ["碳箱码", "企业", "园区", "县（市、区）", "颜色", "持续天数", "饱和度 (%)", "原因"]


def _box_filters(params: dict[str, Any]) -> box_lists.BoxFilters:
    return box_lists.BoxFilters(
        county=params.get("county"),
        park=params.get("park"),
        enterprise=params.get("enterprise"),
        q=params.get("q") or "",
        sort=params.get("sort") or "days",
    )


def authorise_colour_boxes(session: Session, actor: Principal, params: dict[str, Any]) -> None:
    """As the page: regulators, park administrations and operators (403); a filter outside the
    jurisdiction is not found (404)."""
    if not (actor.is_operator or actor.has_role("regulator") or actor.has_role("park_admin")):
        raise Forbidden("此列表仅供生态环境监管部门和园区管委会使用 (regulators and park administrations only)")
    choices = box_lists.filter_choices(session, actor)
    inside = (
        (params.get("county") is None or params["county"] in {c.code for c in choices["counties"]})
        and (params.get("park") is None or params["park"] in {p.id for p in choices["parks"]})
        and (params.get("enterprise") is None or box_lists.may_filter_by(session, actor, params["enterprise"]))
    )
    if not inside:
        raise NotFound("所选范围不存在，或您无权查看 (the chosen area does not exist or is not yours to see)")


def _reason_zh(reason: dict[str, Any], templates: dict[str, str]) -> str:
    if reason.get("zh"):
        return str(reason["zh"])
    template = templates.get(reason.get("code", ""), "")
    try:
        return template.format(observed=reason.get("observed", "—"), threshold=reason.get("threshold", "—")) or str(
            reason.get("code", "")
        )
    except (KeyError, IndexError, ValueError):
        return str(reason.get("code", ""))


def write_colour_boxes(
    session: Session,
    actor: Principal,
    params: dict[str, Any],
    fmt: str,
    out: IO[bytes],
    report: Callable[[int, int | None], None],
) -> ExportMeta:
    colour, now = params["colour"], utcnow()
    report(0, 1)
    result = box_lists.colour_list(
        session, actor, colour, _box_filters(params), now, page=1, per_page=box_lists.SORT_LIMIT
    )
    templates = {rule.code: rule.zh for rule in wiring_of(session).colour_rules().rules}
    rows = []
    for r in result.rows:
        box = r.box
        reasons = sorted(box.colour_reasons or [], key=lambda x: 0 if x.get("level") == box.colour else 1)
        rows.append(
            [
                box.code,
                box.enterprise.name,
                box.enterprise.park.name if box.enterprise.park else "",
                box.enterprise.county.name if box.enterprise.county else "",
                COLOUR_ZH.get(box.colour, box.colour),
                round(r.days, 1) if r.days is not None else None,
                round(r.saturation * 100, 1) if r.saturation is not None else None,
                "；".join(_reason_zh(x, templates) for x in reasons),
            ]
        )
        report(len(rows), len(result.rows))  # the rows this export writes (its list's total is capped)
    title = f"{COLOUR_ZH[colour]}碳箱"
    if fmt == "csv":
        out.write(table_export.to_csv(BOX_HEADER, rows))
        mime = CSV_MIME
    else:
        out.write(table_export.to_xlsx(title, BOX_HEADER, rows))
        mime = XLSX_MIME
    report(len(rows), len(rows))
    stamp = to_local_str(now, "%Y%m%d")
    return ExportMeta(f"{colour}_boxes_{stamp}.{fmt}", f"{title}_{stamp}.{fmt}", mime)


COLOUR_BOXES = ExportKind(
    name="colour_boxes",
    params_schema=ColourBoxesExportParams,
    authorise=authorise_colour_boxes,
    write=write_colour_boxes,
    title_zh="红码/黄码碳箱",
    title_en="Red and yellow boxes",
)
