"""The county synergy index: thin views over :mod:`app.index.services` (API and the /index page)."""
from __future__ import annotations

from flask import Blueprint as PageBlueprint, abort, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_smorest import Blueprint

from app.accounts.services import Principal
from app.common.auth import require_user
from app.common.errors import InvalidInput
from app.common.schemas import listing, page_schema
from app.extensions import db
from app.index import importing, schemas, services
from app.ledger.views import unit_of_work

blp = Blueprint("index", __name__, description="County synergy index (减污降碳协同指数, 附件2)")

_IMPORT_BODY = {
    "description": "JSON (a list of rows, or {values: [...]}), or a multipart upload `file` (.csv or .xlsx; "
                   "Chinese or English headers), or a CSV body (text/csv). All rows or none are stored.",
    "content": {
        "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/ValueIn"}}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string",
                                                                                     "format": "binary"}}}},
        "text/csv": {"schema": {"type": "string"}},
    },
}


@blp.route("/index/definition")
@blp.response(200, schemas.DefinitionOut)
def definition():
    """The indicator tree (5 / 15 / 32) with weights, directions, quarterly rules and the weight
    problems found when the table was loaded (reported, never fixed)."""
    require_user()
    return services.definition_document()


def _rows_of_request() -> importing.RawRows:
    upload = request.files.get("file")
    if upload is not None:
        return importing.read_upload(upload.filename, upload.mimetype, upload.read())
    if request.mimetype in importing.CSV_TYPES:
        return importing.read_csv(request.get_data())
    if request.is_json:
        return importing.read_json(request.get_json(silent=True))
    raise InvalidInput.field("file", "send JSON rows, or a .csv/.xlsx file as the multipart field 'file'")


@blp.route("/index/values", methods=["POST"])
@blp.doc(requestBody=_IMPORT_BODY)
@blp.response(200, schemas.ImportResult)
def import_values():
    """Import indicator values (operators and the city regulator). Any bad row → 422 listing every
    bad row and field, and nothing is stored; a re-import updates the value and keeps the old one."""
    actor = require_user()
    services.require_importer(actor)  # 403 before reading the upload
    with unit_of_work():
        return services.import_values(db.session, actor, _rows_of_request())


@blp.route("/index/values")
@blp.arguments(schemas.ValuesQuery, location="query")
@blp.response(200, page_schema(schemas.ValueOut))
def list_values(args):
    """The imported values (regulators), to check what the scores were computed from."""
    period = services.parse_period(args["period"]) if args.get("period") else None
    query = services.list_values(db.session, require_user(), period, args.get("county"))
    return listing(query, args)


@blp.route("/index/scores")
@blp.arguments(schemas.ScoresQuery, location="query")
@blp.response(200, schemas.ScoresOut)
def scores(args):
    """Scores per county for a year or a quarter: per indicator, subtotals per level, total, rank,
    missing indicators, and the change against the base year (target +10 %). Regulators only."""
    return services.scores(db.session, require_user(), args["period"], args.get("base_year"))


# ---------------------------------------------------------------- the page

pages = PageBlueprint("index_pages", __name__, template_folder="../templates")


@pages.route("/index")
@login_required
def index_page():
    """The score table per county for a period (regulators), Chinese by default."""
    actor = Principal(user=current_user._get_current_object())
    if not services.can_read_scores(actor):
        abort(403)
    from app.common.timeutil import utcnow

    default_period = str(utcnow().year - 1)
    period = (request.args.get("period") or default_period).strip().upper()
    base_year = request.args.get("base_year", type=int)
    result, error = None, None
    try:
        result = services.scores(db.session, actor, period, base_year)
    except InvalidInput as exc:
        error = exc.detail
    return render_template("index_scores.html", result=result, error=error, period=period, base_year=base_year,
                           definition=services.definition(), title=_("减污降碳协同指数"))


API_BLUEPRINTS = (blp,)
BLUEPRINTS = (pages,)
