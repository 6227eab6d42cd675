"""Box API: registration, detail with colour and reasons, fills, history, status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint

from app.boxes import cache, codes, lean, presenters, schemas, services
from app.boxes.models import COLOURS
from app.boxes.services.stored import rules_digest
from app.common.auth import LEAN_CALLER, known_user_token, require_user, visibility_from_row
from app.common.lean_dump import compile_dump
from app.common.pagination import keyset_page
from app.common.schemas import page_schema, with_next_link
from app.common.timeutil import utcnow
from app.common.tx import commit_read_effects
from app.common.wiring import current_wiring, wiring_of
from app.extensions import db

blp = Blueprint("boxes", __name__, description="Carbon boxes and the four-colour code (碳箱码)")


@blp.route("/boxes")
class Boxes(MethodView):
    @blp.arguments(schemas.BoxQuery, location="query")
    @blp.response(200, page_schema(schemas.BoxOut))
    def get(self, args):
        """Boxes visible to the caller; filter by colour, county, park, enterprise, status."""
        actor = require_user()
        if args.get("enterprise"):
            # Another tenant's enterprise is not found (404), as its boxes and its label sheet are.
            services.require_visible_enterprise(db.session(), actor, args["enterprise"])
        if args.get("park"):
            services.require_visible_park(db.session(), actor, args["park"])
        query = services.list_boxes(
            db.session(),
            actor,
            colour=args.get("colour"),
            county=args.get("county"),
            park=args.get("park"),
            enterprise=args.get("enterprise"),
            status=args.get("status"),
        )
        page = keyset_page(db.session(), query, args)
        views = services.view_boxes(db.session(), page["items"])
        commit_read_effects(db.session())
        page["items"] = [presenters.box_payload(v) for v in views]
        return with_next_link(page)

    @blp.arguments(schemas.BoxIn)
    @blp.response(201, schemas.BoxOut)
    def post(self, body):
        """Register a box at an enterprise."""
        box = services.register_box(db.session(), require_user(), body)
        view = services.view_box(db.session(), box)
        return presenters.box_payload(view)  # committed by the boundary (app.common.tx)


@blp.route("/boxes/<code>")
@blp.response(200, schemas.BoxOut)
def box_detail(code):
    """A box with its colour, every triggered rule, saturation and predicted replacement date."""
    now = utcnow()
    normal = codes.normalise(code)
    # The lean read (app.boxes.lean): a caller whose token this process knows, a box whose
    # stored evaluation is current. Anything else (first use of a token, a device token, a box
    # that must be evaluated first, a box not visible) takes the ordinary path, which also
    # answers every refusal (401, 403, 404) as it always has. No session is made on this path.
    token_hash = known_user_token() if normal is not None else None
    if token_hash is not None and normal is not None:
        wiring = current_wiring()
        rules = wiring.colour_rules()
        read = lean.read_box(
            db.engine,
            normal,
            now,
            rules,
            rules_digest(rules),
            caller=LEAN_CALLER,
            caller_params={"token_hash": token_hash},
        )  # one statement: the box with its stored evaluation and the caller's token
        viewer = visibility_from_row(read.caller) if read is not None else None
        if read is not None and viewer is not None and services.can_see(viewer, **read.visibility):
            scope = (wiring.rules_dir,)  # see app.boxes.cache
            entry = cache.box_json_cache.get(db.engine, scope, normal, read.box.revision, now)
            return _json_answer(entry.value if entry is not None else lean_box_body(read, scope, now))
    actor = require_user()
    box = services.get_box(db.session(), actor, code)
    view = services.view_box(db.session(), box, now)
    body = _body(presenters.box_payload(view))
    commit_read_effects(db.session())
    scope = (wiring_of(db.session()).rules_dir,)
    cache.box_json_cache.put(db.engine, scope, box.code, box.revision, body, now, view.evaluation.next_check_at)
    return _json_answer(body)


def lean_box_body(read: lean.LeanRead, scope: tuple, now: datetime) -> bytes:
    """The JSON of a lean read's box, kept in the read cache (app.boxes.cache). In a request's
    context: also the fast path's (app.web.fast_reads) when the body is not in the cache."""
    view = services.BoxView(read.box, read.evaluation, read.fill)  # type: ignore[arg-type]
    body = _body(presenters.box_payload(view))
    box = read.box
    cache.box_json_cache.put(db.engine, scope, box.code, box.revision, body, now, read.evaluation.next_check_at)
    return body


#: BoxOut's dump compiled once (app.common.lean_dump): the schema stays the description of the
#: output, without marshmallow's per-field machinery on every read.
_BOX_DUMP = compile_dump(schemas.BoxOut())


def _body(payload: dict) -> bytes:
    """The box's JSON, the same bytes by either path (orjson: UTF-8, no NaN)."""
    return orjson.dumps(_BOX_DUMP(payload))


def _json_answer(body: bytes) -> Response:
    """The box's JSON with an ETag of its bytes: a client that has them gets 304 (the figures
    drift with time, so the tag is of what is shown, not of the box's revision alone)."""
    response = Response(body, mimetype="application/json")
    response.headers["Cache-Control"] = "private, no-cache"
    response.add_etag()
    if "HTTP_IF_NONE_MATCH" in request.environ:  # only a client holding a tag can get a 304
        response.make_conditional(request)  # 304 without the body when If-None-Match has the tag
    return response


@blp.route("/boxes/<code>/status", methods=["POST"])
@blp.arguments(schemas.BoxStatusIn)
@blp.response(200, schemas.BoxOut)
def box_status(body, code):
    """Stop, restart or decommission a box."""
    actor = require_user()
    box = services.get_box(db.session(), actor, code)
    services.set_status(db.session(), actor, box, body["status"])
    view = services.view_box(db.session(), box)
    return presenters.box_payload(view)


@blp.route("/boxes/<code>/fills", methods=["POST"])
@blp.arguments(schemas.FillIn)
@blp.response(201, schemas.FillOut)
def box_fill(body, code):
    """Record a fill or a replacement (with the weighed waste carbon removed)."""
    actor = require_user()
    box = services.get_box(db.session(), actor, code)
    fill = services.record_fill(db.session(), actor, box, body)
    return fill


@blp.route("/boxes/<code>/history")
@blp.response(200, schemas.HistoryOut)
def box_history(code):
    """Colour changes (with times), fills and events, and days spent in each colour."""
    box = services.get_box(db.session(), require_user(), code)
    services.view_box(db.session(), box)
    commit_read_effects(db.session())
    data: dict[str, Any] = dict(services.history(db.session(), box))
    changes = data["colour_changes"]
    now = utcnow()
    start = changes[0].changed_at if changes else now
    data["days_by_colour"] = {c: round(services.days_in_colour(changes, c, start, now), 3) for c in COLOURS}
    data["code"] = box.code
    return data


@blp.route("/boxes/<code>/label-reprints", methods=["POST"])
@blp.response(200, schemas.BoxOut)
def box_reprint(code):
    """Issue a new label version; scans of the old label are then shown as superseded."""
    actor = require_user()
    box = services.get_box(db.session(), actor, code)
    services.reprint_label(db.session(), actor, box)
    view = services.view_box(db.session(), box)
    return presenters.box_payload(view)


API_BLUEPRINTS = (blp,)
