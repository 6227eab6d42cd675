"""Box API: registration, detail with colour and reasons, fills, history, status."""

from __future__ import annotations

import json
from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from app.boxes import cache, codes, presenters, schemas, services
from app.boxes.models import COLOURS
from app.common.auth import require_user
from app.common.pagination import keyset_page
from app.common.schemas import page_schema, with_next_link
from app.common.timeutil import utcnow
from app.common.tx import commit_read_effects
from app.common.wiring import wiring_of
from app.extensions import db

blp = Blueprint("boxes", __name__, description="Carbon boxes and the four-colour code (碳箱码)")


@blp.route("/boxes")
class Boxes(MethodView):
    @blp.arguments(schemas.BoxQuery, location="query")
    @blp.response(200, page_schema(schemas.BoxOut))
    def get(self, args):
        """Boxes visible to the caller; filter by colour, county, park, enterprise, status."""
        actor = require_user()
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
    actor = require_user()
    now = utcnow()
    normal = codes.normalise(code)
    if normal is not None:
        entry = cache.box_json_cache.get(db.engine, _cache_scope(), normal, now)
        if entry is not None and services.can_see(actor, **cache_visibility(entry.facts)):
            return Response(entry.value, mimetype="application/json")
    box = services.get_box(db.session(), actor, code)
    view = services.view_box(db.session(), box, now)
    commit_read_effects(db.session())
    body = json.dumps(schemas.BoxOut().dump(presenters.box_payload(view)), ensure_ascii=False).encode()
    cache.box_json_cache.put(db.engine, _cache_scope(), box, body, now, view.evaluation.next_check_at)
    return Response(body, mimetype="application/json")


def _cache_scope() -> tuple:
    """What besides the database decides a box's JSON: the app's rule files (two apps in one
    process, on one database, with different RULES_DIR folders, must not share entries)."""
    return (wiring_of(db.session()).rules_dir,)


def cache_visibility(facts: cache.BoxFacts) -> dict:
    return {
        "enterprise_id": facts.enterprise_id,
        "service_org_id": facts.service_org_id,
        "county_code": facts.county_code,
        "park_id": facts.park_id,
    }


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
