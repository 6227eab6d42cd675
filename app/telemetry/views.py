"""Telemetry API: ingest readings, read them back (raw or rolled up), list MQTT dead letters."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from datetime import timedelta

import orjson
from flask import Response, current_app, request
from flask_smorest import Blueprint

from app.boxes.services import get_box
from app.common.auth import current_principal, require_user
from app.common.errors import InvalidInput
from app.common.schemas import listing, page_schema
from app.common.timeutil import utcnow
from app.common.tx import held_until_commit
from app.extensions import db
from app.telemetry import schemas, services, setting, wire

blp = Blueprint("telemetry", __name__, description="Sensor readings and alarms (在线监测)")

_DOC_413 = {"description": "more readings than the batch limit (5,000), or a body over 8 MiB"}


@blp.route("/readings", methods=["POST"])
@blp.doc(
    requestBody={"required": True, "content": {"application/json": {"schema": schemas.ReadingBatchIn}}},
    responses={
        "400": {"description": "malformed JSON"},
        "413": _DOC_413,
        "422": {"description": 'the body is not a list of readings nor {"readings": [...]}'},
    },
)
@blp.response(200, schemas.IngestResultOut)
def ingest_readings():
    """Ingest a batch of readings (gateway device token, the box's enterprise, or an operator).

    Always 200 when the batch itself is well-formed: the answer counts accepted readings and
    duplicates (same box and ts, already stored: re-sending a batch is safe) and lists each
    rejected item's index and errors. One bad item never loses the good ones. A box outside the
    caller's organisation is reported as "unknown box".
    """
    actor = current_principal()
    assert actor is not None  # current_principal() raises Unauthorized unless optional=True
    limit = setting(current_app.config, "TELEMETRY_MAX_BODY_BYTES")
    if request.content_length is not None and request.content_length > limit:
        raise services.BatchTooLarge(f"the body is larger than {limit} bytes; split the batch")
    data = request.get_data(cache=False)
    if len(data) > limit:  # sent without a Content-Length (chunked)
        raise services.BatchTooLarge(f"the body is larger than {limit} bytes; split the batch")
    with gc_paused():
        body = wire.decode(data)
        settings = services.Settings.from_config(current_app.config)
        items = services.readings_of(body, settings.max_batch)
        # The writer lock is held until the boundary (app.common.tx) has committed the batch.
        result = services.ingest(db.session(), actor, items, settings, held=held_until_commit())
    # Serialised directly (the documented IngestResultOut shape): a schema dump per batch costs
    # more than the rest of the response.
    return Response(orjson.dumps(_result_body(result)), mimetype="application/json")


@contextmanager
def gc_paused():
    """No cyclic garbage collection while a batch is decoded and stored: its thousands of
    tuples, rows and dicts (freed by reference counting, nearly none in a cycle) set off young
    and full collections of the whole process's objects, a fifth of a batch's time (measured:
    1.7 s of 8.5 s over six 1,000-reading batches). Collection resumes after the batch."""
    if not gc.isenabled():  # (paused already, or turned off by the process: left as it is)
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _result_body(result) -> dict:
    dumped = schemas.IngestResultOut().dump(result) if result.rejected_items else None
    if dumped is not None:
        return dumped
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "rejected_items": [],
    }


@blp.route("/boxes/<code>/readings")
@blp.arguments(schemas.ReadingsQuery, location="query")
@blp.response(200, schemas.ReadingsOut)
def box_readings(args, code):
    """A box's readings over [from, to): raw (at most 10,000, then `truncated`), or hourly or daily
    roll-ups (days and hours in Asia/Shanghai)."""
    box = get_box(db.session(), require_user(), code)
    resolution = args["resolution"]
    end = args.get("end") or utcnow()
    default_span = {"raw": timedelta(days=1), "hour": timedelta(days=7), "day": timedelta(days=90)}[resolution]
    start = args.get("start") or end - default_span
    if start >= end:
        raise InvalidInput.field("from", "must be before `to`")
    out = {"code": box.code, "resolution": resolution, "start": start, "end": end}
    if resolution == "raw":
        out["readings"], out["truncated"] = services.raw_readings(db.session(), box, start, end)
    else:
        out["rollups"] = services.rollup_readings(db.session(), box, start, end, resolution)
    return out


@blp.route("/telemetry/dead-letters")
@blp.arguments(schemas.DeadLetterQuery, location="query")
@blp.response(200, page_schema(schemas.DeadLetterOut))
def dead_letters(args):
    """MQTT messages that could not be stored (undecodable, invalid, unauthenticated, rejected
    items), newest first, with the reason. Operators only."""
    return listing(services.dead_letters(require_user(), args.get("reason")), args)


API_BLUEPRINTS = (blp,)
