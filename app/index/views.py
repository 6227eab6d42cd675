"""The county synergy index: thin views over :mod:`app.index.services` (API and the /index page)."""

from __future__ import annotations

import re

from flask import Blueprint as PageBlueprint
from flask import abort, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_smorest import Blueprint

from app.accounts.services import Principal
from app.common.auth import require_user
from app.common.errors import InvalidInput
from app.common.schemas import listing, page_schema
from app.common.timeutil import local_date, utcnow
from app.extensions import db
from app.index import importing, schemas, services

blp = Blueprint("index", __name__, description="County synergy index (减污降碳协同指数, 附件2)")

_IMPORT_BODY = {
    "description": "JSON (a list of rows, or {values: [...]}), or a multipart upload `file` (.csv or .xlsx; "
    "Chinese or English headers), or a CSV body (text/csv; UTF-8, UTF-16 or GB18030). All rows or none "
    "are stored. At most 5 MB and 10,000 rows (413 / 422 beyond).",
    "content": {
        "application/json": {"schema": {"type": "array", "items": schemas.ValueIn}},  # registered by the ma plugin
        "multipart/form-data": {
            "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
        },
        "text/csv": {"schema": {"type": "string"}},
    },
}


@blp.route("/index/definition")
@blp.response(200, schemas.DefinitionOut)
def definition():
    """The indicator tree (5 / 15 / 32) with weights, directions, quarterly rules and the weight
    problems found when the table was loaded (reported, never fixed)."""
    require_user()
    return services.definition_document(services.definition(db.session()))


def _rows_of_request() -> importing.RawRows:
    # The body is refused before it is read or parsed when it is larger than any import can be
    # (a multipart envelope adds little to the file it carries).
    if (request.content_length or 0) > importing.MAX_BYTES + 64 * 1024:
        raise importing.too_large()
    upload = request.files.get("file")
    if upload is not None:
        return importing.read_upload(upload.filename, upload.mimetype, upload.read(importing.MAX_BYTES + 1))
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
    return services.import_values(db.session(), actor, _rows_of_request())


@blp.route("/index/values")
@blp.arguments(schemas.ValuesQuery, location="query")
@blp.response(200, page_schema(schemas.ValueOut))
def list_values(args):
    """The imported values (regulators), to check what the scores were computed from."""
    actor = require_user()  # 401/403 before any 422 about the query
    period = services.parse_period(args["period"]) if args.get("period") else None
    query = services.list_values(db.session(), actor, period, args.get("county"))
    return listing(query, args)


@blp.route("/index/scores")
@blp.arguments(schemas.ScoresQuery, location="query")
@blp.response(200, schemas.ScoresOut)
def scores(args):
    """Scores per county for a year or a quarter: per indicator, subtotals per level, total, rank,
    missing indicators, and the change against the base year (target +10 %). Regulators only."""
    return services.scores(db.session(), require_user(), args["period"], args.get("base_year"))


# ---------------------------------------------------------------- the page

pages = PageBlueprint("index_pages", __name__, template_folder="../templates")


@pages.route("/index")
@login_required
def index_page():
    """The score table per county for a period (regulators), Chinese by default."""
    actor = Principal(user=current_user._get_current_object())
    if not services.can_read_scores(actor):
        abort(403)
    default_period = str(local_date(utcnow()).year - 1)  # the last full year, in Taizhou
    period = (request.args.get("period") or default_period).strip().upper()
    base_year = request.args.get("base_year", type=int)
    result, error, status = None, None, 200
    try:
        result = services.scores(db.session(), actor, period, base_year)
    except InvalidInput as exc:
        # A message in the page's language; the field is what the person must change.
        if "base_year" in exc.errors:
            error = _("基准年应为 2000 年起、早于考核期间的年份")
        elif "period" in exc.errors:
            error = _("考核期间应为年份（如 2025）或季度（如 2025-Q2），2000–2100 年")
        else:  # pragma: no cover - scores() only refuses these two
            error = exc.detail
        status = 422
    return render_template(
        "index_scores.html",
        result=result,
        error=error,
        period=period,
        base_year=base_year,
        definition=services.definition(db.session()),
        version=version_label(services.definition(db.session()).version),
        title=_("减污降碳协同指数"),
    ), status


_DRAFT_VERSION = re.compile(r"(?P<year>\d{4})-consultation-draft-(?P<n>\d+)")


def version_label(version: str) -> str:
    """The rule file's version in the page's language ("2025-consultation-draft-1" is the
    consultation draft of 2025, edition 1); any other version as written."""
    match = _DRAFT_VERSION.fullmatch(version or "")
    if match is None:
        return version
    return _("%(year)s 年征求意见稿第 %(n)s 版", year=match["year"], n=match["n"])


API_BLUEPRINTS = (blp,)
BLUEPRINTS = (pages,)
