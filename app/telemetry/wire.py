"""The wire format of a batch of readings: JSON bytes → the items that ingest checks.

Two decoders, one answer. The fast one, msgspec, decodes a well-formed batch straight into typed
readings and checks every type and sensor range in C while it reads (in a quarter of the time
orjson takes to build the dicts that the per-item checks then walk). It accepts a body only when
every item is well typed and in range; anything it refuses (a wrong type, an out-of-range value, an
unknown field, a missing required measure, ``running`` given as 0/1, JSON it cannot read) is decoded
again the general way (orjson, then the standard library for what orjson refuses but JSON allows),
and :func:`app.telemetry.services.check_items` names each bad item's errors. So the fast decoder
never decides that an item is bad: it only lets good batches skip the slow checks. What it cannot
see (a blank box code, a timestamp that does not parse or lies outside the accepted span) is checked
per item on both paths alike.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
import orjson

from app.common.errors import DomainError
from app.telemetry.models import MEASURES


class TypedReadings(list):
    """The readings of a batch that msgspec decoded and type-checked: :data:`Reading` structs."""


def _reading_struct() -> type:
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [("box_code", str), ("ts", str | float)]
    optional = []
    for name, (_unit, lo, hi, required) in MEASURES.items():
        kind = Annotated[float, msgspec.Meta(ge=lo, le=hi)]
        if required:
            fields.append((name, kind))
        else:
            optional.append((name, kind | None, None))
    # Fields without a default come first; the attribute names are what check_items reads.
    return msgspec.defstruct(
        "Reading", [*fields, *optional, ("running", bool, True)], forbid_unknown_fields=True, gc=False
    )


Reading = _reading_struct()


class _Batch(msgspec.Struct, gc=False):
    readings: list[Reading]  # type: ignore[valid-type]


_FAST = msgspec.json.Decoder(_Batch | list[Reading])  # type: ignore[valid-type]


def decode(data: bytes) -> Any:
    """The body's items, typed when the fast decoder accepts them all (a :class:`TypedReadings`),
    else the JSON document as it is (the caller finds its items with ``readings_of``).
    Malformed JSON, or JSON nesting deeper than the decoders can recurse, is a
    :class:`DomainError` (400)."""
    try:
        body = _FAST.decode(data)
    except msgspec.DecodeError:
        return parse_json(data)
    except RecursionError:  # msgspec too recurses into a hostile nesting (see parse_json)
        raise DomainError("malformed JSON: the document nests too deeply") from None
    return TypedReadings(body.readings if type(body) is _Batch else body)


def parse_json(data: bytes) -> Any:
    """The request body as JSON: orjson, and the standard library for what orjson refuses but it
    reads (integers beyond 64 bits, NaN, UTF-16/32 bodies), so that such readings are still
    rejected item by item.

    A hostile body nesting deeper than orjson's limit makes the standard library recurse until
    Python's stack limit: that is the caller's malformed input (400), never a server error. The
    request guard (app.common.errors) refuses deep JSON sent as ``application/json``; this catches
    it whatever the content type, and for the MQTT subscriber, which has no request guard."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            return json.loads(data)
        except RecursionError:
            raise DomainError("malformed JSON: the document nests too deeply") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise DomainError(f"malformed JSON: {exc}") from exc


def as_item(reading: Any) -> dict[str, Any]:
    """A typed reading as the dict the general path would have decoded (for error reports)."""
    return msgspec.structs.asdict(reading)
