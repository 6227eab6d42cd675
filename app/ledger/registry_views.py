"""The manifest registry (联单台账) API: JSON pages by keyset, CSV and XLSX streamed.

Four views (:data:`app.ledger.services.registry_export.VIEWS`); an unknown view is a 404 (the
route does not match), a view the caller has no part in a 403 before any row is read. The CSV
leaves as it is written (``stream_with_context``: the request's session reads the rows through a
server-side cursor); the XLSX is written row by row to a temporary file, then sent from it. Both
keep memory flat (``scripts/bench_registry.py`` measures it).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO
from urllib.parse import quote

from flask import Response, stream_with_context
from flask_smorest import Blueprint

from app.common.auth import require_user
from app.common.errors import InvalidInput
from app.common.pagination import decode_cursor, encode_cursor
from app.common.schemas import with_next_link
from app.common.timeutil import SHANGHAI, utcnow
from app.extensions import db
from app.ledger import registry_schemas as schemas
from app.ledger.services import registry_export as registry

blp = Blueprint(
    "registry", __name__, description="The manifest registry (联单台账): outgoing, incoming, transported, managed"
)

VIEW = "<any(outgoing,incoming,transported,managed):view>"


def _filters(args: dict, **extra) -> registry.RegistryFilters:
    return registry.RegistryFilters(
        status=args.get("status"),
        waste_code=args.get("waste_code"),
        start=args.get("from_"),
        end=args.get("to"),
        **extra,
    )


@blp.route(f"/registry/{VIEW}")
@blp.arguments(schemas.RegistryQuery, location="query")
@blp.response(200, schemas.RegistryPageOut)
def registry_page(args, view):
    """One row per manifest line the caller may see in this view (drafts left out), by line id;
    page on with `cursor` = `next_cursor` (also the `Link: rel="next"` header)."""
    after = decode_cursor(args["cursor"], 1)[0] if args.get("cursor") else None
    if after is not None and (not isinstance(after, int) or isinstance(after, bool)):
        raise InvalidInput.field("cursor", "not a cursor of this list (use the `next_cursor` it returned)")
    per_page = args["per_page"]
    rows = list(
        registry.registry_rows(db.session(), require_user(), view, _filters(args, after=after, limit=per_page + 1))
    )
    next_cursor = encode_cursor([rows[per_page - 1]["line_id"]]) if len(rows) > per_page else None
    return with_next_link({"items": rows[:per_page], "per_page": per_page, "next_cursor": next_cursor})


def _filename(view: str, extension: str) -> str:
    stamp = utcnow().astimezone(SHANGHAI).strftime("%Y%m%d-%H%M")
    utf8_name = quote(f"联单台账-{registry.VIEW_ZH[view]}-{stamp}.{extension}")
    return f"attachment; filename=\"registry-{view}-{stamp}.{extension}\"; filename*=UTF-8''{utf8_name}"


@blp.route(f"/registry/{VIEW}.csv")
@blp.arguments(schemas.RegistryExportArgs, location="query")
@blp.response(200, content_type="text/csv")
def registry_csv(args, view):
    """The whole view as CSV (UTF-8 with BOM, Chinese or English headers), streamed."""
    rows = registry.export_rows(db.session(), require_user(), view, _filters(args))
    body = stream_with_context(registry.csv_chunks(rows, args["lang"]))
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": _filename(view, "csv")})


@blp.route(f"/registry/{VIEW}.xlsx")
@blp.arguments(schemas.RegistryExportArgs, location="query")
@blp.response(200, content_type=registry.XLSX_MIME)
def registry_xlsx(args, view):
    """The whole view as XLSX (one sheet, text cells never formulas)."""
    rows = registry.export_rows(db.session(), require_user(), view, _filters(args))
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _send when the response is sent)
    registry.write_xlsx(rows, spool, args["lang"], title=f"联单台账-{registry.VIEW_ZH[view]}")
    size = spool.tell()
    spool.seek(0)
    return Response(
        _send(spool),
        mimetype=registry.XLSX_MIME,
        headers={"Content-Disposition": _filename(view, "xlsx"), "Content-Length": str(size)},
        direct_passthrough=True,
    )


def _send(spool: IO[bytes], size: int = 1 << 16) -> Iterator[bytes]:
    try:
        while chunk := spool.read(size):
            yield chunk
    finally:
        spool.close()
