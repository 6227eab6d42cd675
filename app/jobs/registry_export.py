"""The manifest registry (app/ledger/services/registry_export.py) as an ``export`` job: a city's
registry runs to 10⁶ lines, longer than a request should stream, so a regulator can ask for it as
a job and download the file when it is done. The same rows, columns and formula-safe cells as
``/api/v1/registry/{view}.csv|.xlsx``; progress every few thousand rows (the total is not counted
first: that would read every row twice)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from marshmallow import fields, validate
from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.common.timeutil import to_local_str, utcnow
from app.jobs.kinds import ExportKind, ExportMeta
from app.ledger.registry_schemas import RegistryExportArgs
from app.ledger.services import registry_export as registry

REPORT_EVERY = 5000


class RegistryJobParams(RegistryExportArgs):
    view = fields.Str(required=True, validate=validate.OneOf(registry.VIEWS))


def _filters(params: dict[str, Any]) -> registry.RegistryFilters:
    return registry.RegistryFilters(
        status=params.get("status"),
        waste_code=params.get("waste_code"),
        start=params.get("from_"),
        end=params.get("to"),
    )


def authorise_registry(_session: Session, actor: Principal, params: dict[str, Any]) -> None:
    """As the download: 403 for a view the caller has no part in (checked before any row is read)."""
    registry.registry_query(actor, params["view"], _filters(params))


def _counted(
    rows: Iterable[registry.ExportRow], report: Callable[[int, int | None], None]
) -> Iterator[registry.ExportRow]:
    for done, row in enumerate(rows, start=1):
        yield row
        if done % REPORT_EVERY == 0:
            report(done, None)


def write_registry(
    session: Session,
    actor: Principal,
    params: dict[str, Any],
    fmt: str,
    out: IO[bytes],
    report: Callable[[int, int | None], None],
) -> ExportMeta:
    view, lang, now = params["view"], params.get("lang", "zh"), utcnow()
    report(0, None)
    rows = _counted(registry.export_rows(session, actor, view, _filters(params)), report)
    title = f"联单台账-{registry.VIEW_ZH[view]}"
    if fmt == "csv":
        written = registry.write_csv(rows, out, lang)
        mime = registry.CSV_MIME
    else:
        written = registry.write_xlsx(rows, out, lang, title=title)
        mime = registry.XLSX_MIME
    report(written, written)
    stamp = to_local_str(now, "%Y%m%d")
    return ExportMeta(f"registry-{view}-{stamp}.{fmt}", f"{title}-{stamp}.{fmt}", mime)


REGISTRY = ExportKind(
    name="registry",
    params_schema=RegistryJobParams,
    authorise=authorise_registry,
    write=write_registry,
    title_zh="联单台账",
    title_en="Manifest registry",
)
