"""Statistics API (JSON, CSV, XLSX), value-added import, and the /statistics page.

Thin: parse, call :mod:`app.statistics.services`, render. The base year defaults to the
``STATISTICS_BASE_YEAR`` setting (2024 when unset).
"""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from app.common.auth import require_user
from app.common.schemas import listing, page_schema
from app.extensions import db
from app.ledger import schemas as ledger_schemas
from app.statistics import exports, schemas, services
from app.statistics.page import base_year_default, pages
from app.statistics.services.anomalies import anomalies as find_anomalies

blp = Blueprint(
    "statistics",
    __name__,
    description="Statistics per park, county and city: 趋零填埋, regeneration, manifests, boxes, intensity",
)

CSV_MIME = "text/csv"  # Flask adds "; charset=utf-8"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _metrics(kind: str, ident: Any, args: dict) -> dict[str, Any]:
    actor = require_user()
    scope = services.resolve_scope(db.session(), kind, ident)
    return services.metrics(db.session(), actor, scope, args["period"], args.get("base_year") or base_year_default())


def _download(kind: str, ident: Any, args: dict, extension: str) -> Response:
    m = _metrics(kind, ident, args)
    if extension == "csv":
        body, mime = exports.to_csv(m), CSV_MIME
    else:
        # The workbook also carries the 12 months up to the period, as the page's chart does.
        scope = services.resolve_scope(db.session(), kind, ident)
        series = services.landfill_series(db.session(), scope, services.parse_period(args["period"]), 12)
        body, mime = exports.to_xlsx(m, series), XLSX_MIME
    return Response(body, mimetype=mime, headers={"Content-Disposition": exports.content_disposition(m, extension)})


def _routes(path: str, kind: str, name: str, summary: str):
    """The JSON route and its .csv and .xlsx twins for one kind of scope."""

    @blp.route(path, endpoint=f"{name}_json")
    @blp.arguments(schemas.MetricsQuery, location="query")
    @blp.response(200, schemas.MetricsOut)
    def as_json(args, **ident):
        return _metrics(kind, next(iter(ident.values()), None), args)

    as_json.__doc__ = summary + "\n\nThe definitions of every figure are in the response (``definitions``)."

    for extension, mime in (("csv", "text/csv"), ("xlsx", XLSX_MIME)):

        def download(args, _extension=extension, **ident):
            return _download(kind, next(iter(ident.values()), None), args, _extension)

        download.__doc__ = f"{summary} as {extension.upper()} (Chinese headers with units)."
        download.__name__ = f"{name}_{extension}"
        blp.route(f"{path}.{extension}", endpoint=f"{name}_{extension}")(
            blp.arguments(schemas.MetricsQuery, location="query")(blp.response(200, content_type=mime)(download))
        )


_routes(
    "/parks/<int:park_id>/metrics", "park", "park_metrics", "A park's statistics (park administration, regulators)."
)
_routes(
    "/counties/<string:county_code>/metrics",
    "county",
    "county_metrics",
    "A county's statistics (its regulator, city regulators).",
)
_routes("/metrics", "city", "city_metrics", "The whole city's statistics (city regulators, operators).")


@blp.route("/value-added")
class ValueAddedView(MethodView):
    @blp.arguments(schemas.ValueAddedQuery, location="query")
    @blp.response(200, page_schema(schemas.ValueAddedOut))
    def get(self, args):
        """Imported industrial value added (工业增加值) of the scopes the caller may read."""
        query = services.list_value_added(db.session(), require_user(), args.get("scope"), args.get("period"))
        return listing(query, args)

    @blp.arguments(schemas.ValueAddedIn(many=True))
    @blp.response(200, schemas.ValueAddedResult)
    def post(self, items):
        """Import value added: a JSON list of {scope, park_id|county_code, period, value_added_10k_yuan,
        source_department}. A figure for the same scope and period is replaced. Operators and city/county
        regulators (within their county). All or nothing: a bad item → 422 with errors by item index."""
        actor = require_user()
        return services.import_value_added(db.session(), actor, items)


# The /statistics page: app/statistics/page.py.

API_BLUEPRINTS = (blp,)
BLUEPRINTS = (pages,)


@blp.route("/anomalies")
@blp.arguments(ledger_schemas.AnomalyQuery, location="query")
@blp.response(200, ledger_schemas.AnomaliesOut)
def anomalies(args):
    """Mass-balance anomalies per enterprise in the caller's jurisdiction, each with its numbers (zh, en)."""
    return find_anomalies(
        db.session(), require_user(), enterprise=args.get("enterprise"), start=args.get("from_"), end=args.get("to")
    )
