"""The manifest registry (联单台账): one row per manifest line, in the four views the parties expect.

* ``outgoing``: the caller's organisation shipped it (consignor);
* ``incoming``: it received it (receiver);
* ``transported``: it carried it (carrier);
* ``managed``: the regulator's jurisdiction (consignors in its county, or the city), operators all.

Always inside :func:`manifest_scope` (what is not visible is never listed); drafts are no
transfers yet and are left out. Rows come in the order of the line's id, which is also the keyset
(``after``): a line never changes its id, so pages cover every line once however the manifests
move through their states, and lines added meanwhile come at the end.

The rows are plain tuples of a Core ``SELECT`` read with ``yield_per`` (a server-side cursor on
PostgreSQL, ``fetchmany`` on SQLite), so memory stays flat however long the registry: the CSV and
XLSX writers here consume the iterator row by row. They take any binary file, so the job queue can
write an export to a file as well as a response streams it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from app.accounts.models import Organization
from app.accounts.services import Principal
from app.common.errors import Forbidden, NotFound
from app.common.timeutil import SHANGHAI, as_utc
from app.ledger.models import Manifest, ManifestLine, ManifestStatus
from app.ledger.services.manifests import manifest_scope

VIEWS = ("outgoing", "incoming", "transported", "managed")
# How many rows one round trip to the database brings: enough to amortise it, small enough to
# keep the peak memory a few hundred kB whatever the registry's length.
CHUNK = 2000

# The registry's columns, in order: the JSON names, and the header of CSV and XLSX (zh / en).
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("line_id", "行号ID", "line id"),
    ("number", "联单编号", "manifest number"),
    ("origin", "来源", "origin"),
    ("status", "状态", "status"),
    ("created_at", "创建时间", "created"),
    ("submitted_at", "提交时间", "submitted"),
    ("picked_up_at", "转移时间", "picked up"),
    ("received_at", "接收时间", "received"),
    ("processed_at", "处置时间", "processed"),
    ("consignor_name", "移出单位", "consignor"),
    ("consignor_uscc", "移出单位信用代码", "consignor USCC"),
    ("carrier_name", "运输单位", "carrier"),
    ("carrier_uscc", "运输单位信用代码", "carrier USCC"),
    ("vehicle_plate", "车牌号", "vehicle plate"),
    ("receiver_name", "接受单位", "receiver"),
    ("receiver_uscc", "接受单位信用代码", "receiver USCC"),
    ("receiver_licence", "经营许可证号", "receiver licence"),
    ("line_no", "序号", "line"),
    ("waste_code", "废物代码", "waste code"),
    ("waste_name", "废物名称", "waste name"),
    ("category", "类别", "category"),
    ("hazard", "危险特性", "hazard"),
    ("physical_form", "形态", "physical form"),
    ("quantity_kg", "转移量(kg)", "shipped (kg)"),
    ("received_kg", "接收量(kg)", "received (kg)"),
    ("accepted_kg", "接受量(kg)", "accepted (kg)"),
    ("method_code", "利用处置方式", "treatment"),
    ("acceptance", "接收结论", "acceptance"),
)
FIELDS = tuple(name for name, _, _ in COLUMNS)


@dataclass(frozen=True)
class RegistryFilters:
    status: str | None = None
    waste_code: str | None = None
    start: date | None = None  # first local date of creation, inclusive
    end: date | None = None  # last local date, inclusive
    after: int | None = None  # keyset: the last line id already read
    limit: int | None = None


def _local_midnight(day: date) -> datetime:
    return as_utc(datetime.combine(day, time.min, tzinfo=SHANGHAI))


def registry_query(actor: Principal, view: str, filters: RegistryFilters):
    """The registry's ``SELECT`` (columns in :data:`FIELDS` order). 404 for an unknown view,
    403 for a view the caller has no part in."""
    if view not in VIEWS:
        raise NotFound(f"没有 {view} 台账 (no registry view {view!r}: one of {', '.join(VIEWS)})")
    consignor, carrier, receiver = (aliased(Organization, name=n) for n in ("consignor", "carrier", "receiver"))
    query = (
        select(
            ManifestLine.id,
            Manifest.number,
            Manifest.origin,
            Manifest.status,
            Manifest.created_at,
            Manifest.submitted_at,
            Manifest.picked_up_at,
            Manifest.received_at,
            Manifest.processed_at,
            consignor.name,
            consignor.uscc,
            carrier.name,
            carrier.uscc,
            Manifest.vehicle_plate,
            receiver.name,
            receiver.uscc,
            Manifest.receiver_licence,
            ManifestLine.line_no,
            ManifestLine.waste_code,
            ManifestLine.waste_name,
            ManifestLine.category,
            ManifestLine.hazard,
            ManifestLine.physical_form,
            ManifestLine.quantity_kg,
            ManifestLine.received_kg,
            ManifestLine.accepted_kg,
            ManifestLine.method_code,
            Manifest.acceptance,
        )
        .join(Manifest, Manifest.id == ManifestLine.manifest_id)
        .join(consignor, consignor.id == Manifest.consignor_id)
        .join(carrier, carrier.id == Manifest.carrier_id)
        .join(receiver, receiver.id == Manifest.receiver_id)
        .where(manifest_scope(actor), Manifest.status != ManifestStatus.DRAFT)
    )
    org = actor.organization
    if view == "managed":
        if not (actor.is_operator or (org is not None and org.has_role("regulator") and not actor.is_device)):
            raise Forbidden("只有监管部门可以查看辖区联单台账 (the managed registry is for regulators)")
    else:
        if org is None or actor.is_device:
            raise Forbidden("该台账需要所属单位 (this registry view needs an organisation)")
        party = {
            "outgoing": Manifest.consignor_id,
            "incoming": Manifest.receiver_id,
            "transported": Manifest.carrier_id,
        }
        query = query.where(party[view] == org.id)
    if filters.status:
        query = query.where(Manifest.status == filters.status)
    if filters.waste_code:
        query = query.where(ManifestLine.waste_code == filters.waste_code)
    if filters.start:
        query = query.where(Manifest.created_at >= _local_midnight(filters.start))
    if filters.end:
        query = query.where(Manifest.created_at < _local_midnight(filters.end + timedelta(days=1)))
    if filters.after is not None:
        query = query.where(ManifestLine.id > filters.after)
    query = query.order_by(ManifestLine.id)
    if filters.limit is not None:
        query = query.limit(filters.limit)
    return query


def registry_rows(
    session: Session, actor: Principal, view: str, filters: RegistryFilters | None = None
) -> Iterator[dict[str, Any]]:
    """The registry's rows as dicts (:data:`FIELDS`), streamed. Checks the view before the first row
    is asked for (so a 403/404 is raised by the call, not half-way through a download)."""
    query = registry_query(actor, view, filters or RegistryFilters())
    return _stream(session, query)


def _stream(session: Session, query) -> Iterator[dict[str, Any]]:
    result = session.execute(query.execution_options(yield_per=CHUNK, stream_results=True))
    try:
        for row in result:
            values = dict(zip(FIELDS, row, strict=True))
            values["status"] = str(values["status"])
            yield values
    finally:
        result.close()


def header(lang: str = "zh") -> list[str]:
    return [zh if lang == "zh" else en for _, zh, en in COLUMNS]


# ---------------------------------------------------------------- cells and writers

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Control characters (but the tab) become spaces: they break CSV readers and are invalid in XLSX.
_CONTROL = {c: " " for c in range(32) if c != 9}
# Asia/Shanghai has kept UTC+8 without daylight saving since 1991: a fixed offset converts many
# times faster than the zone database (the exports convert five times per row).
_UTC8 = timezone(timedelta(hours=8))


def text_cell(value: Any) -> Any:
    """A cell's value: text a spreadsheet would run as a formula kept as text (leading apostrophe),
    control characters replaced; times in Asia/Shanghai; masses exact (Decimal)."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = value.translate(_CONTROL)
        return "'" + value if value.lstrip(" ").startswith(FORMULA_START) else value
    if isinstance(value, datetime):
        local = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(_UTC8)
        return local.isoformat(" ", "seconds")[:19]
    return value


def write_csv(rows: Iterable[dict[str, Any]], fp: IO[bytes], lang: str = "zh") -> int:
    """UTF-8 CSV with a BOM (Excel on Chinese Windows) into ``fp``; returns the number of rows."""
    counted = _Counted(rows)
    for piece in csv_chunks(counted, lang):
        fp.write(piece)
    return counted.count


def csv_chunks(rows: Iterable[dict[str, Any]], lang: str = "zh", chunk: int = 500) -> Iterator[bytes]:
    """The CSV in pieces of ``chunk`` rows: what a streamed response sends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(header(lang))
    pending = 0
    for row in rows:
        writer.writerow([text_cell(row[name]) for name in FIELDS])
        pending += 1
        if pending >= chunk:
            yield _drain(buffer)
            pending = 0
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    return data


class _Counted:
    def __init__(self, rows: Iterable[dict[str, Any]]):
        self.rows = rows
        self.count = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self.rows:
            self.count += 1
            yield row


def write_xlsx(rows: Iterable[dict[str, Any]], fp: IO[bytes], lang: str = "zh", title: str = "registry") -> int:
    """An XLSX written with openpyxl's write-only mode (rows go to a temporary file as they come,
    so memory does not grow with the rows); returns the number of rows written."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title[:31] or "registry")
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    heading = []
    for text in header(lang):
        cell = WriteOnlyCell(ws, value=text)
        cell.font = bold
        heading.append(cell)
    ws.append(heading)
    count = 0
    for row in rows:
        # text_cell never returns a text starting with "=", so openpyxl writes every text as a
        # string cell, never a formula (tests/ledger/test_registry.py checks the cell types).
        ws.append([text_cell(row[name]) for name in FIELDS])
        count += 1
    wb.save(fp)
    return count
