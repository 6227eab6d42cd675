"""The manifest registry (联单台账): one row per manifest line, in the four views the parties expect.

* ``outgoing``: the caller's organisation shipped it (consignor);
* ``incoming``: it received it (receiver);
* ``transported``: it carried it (carrier);
* ``managed``: the regulator's jurisdiction (consignors in its county, or the city), operators all.

Always inside :func:`manifest_scope` (what is not visible is never listed); drafts are no
transfers yet and are left out. Rows come in the order of the line's id, which is also the keyset
(``after``): a line never changes its id, so pages cover every line once however the manifests
move through their states, and lines added meanwhile come at the end.

Two readers of the same ``SELECT``. :func:`registry_rows` gives dicts of Python values for the JSON
pages. :func:`export_rows` feeds the CSV and XLSX exports (10⁶ rows for a city): every cell as the
text the file shows, read in big chunks of plain tuples. On PostgreSQL the database renders the
cells (``to_char`` of the local time, numbers cast to text) and a psycopg server-side cursor reads
them, with no ORM or type processing per value; elsewhere (SQLite, the embedded default) the same
text is made in Python. Either way memory stays flat however long the registry: the writers here
consume the iterator row by row, and take any binary file, so the job queue can write an export to
a file as well as a response streams it (``scripts/bench_registry.py`` measures both).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from operator import call
from typing import IO, Any
from typing import cast as cast_type

from sqlalchemy import Text, cast, func, select, type_coerce
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from app.accounts.models import Organization
from app.accounts.services import Principal
from app.common.errors import Forbidden, NotFound
from app.common.timeutil import SHANGHAI, as_utc
from app.ledger.models import Manifest, ManifestLine, ManifestStatus
from app.ledger.services import xlsx_stream
from app.ledger.services.manifests import manifest_scope
from app.ledger.services.xlsx_stream import BoundedMemo

VIEWS = ("outgoing", "incoming", "transported", "managed")
# The views' names in the files' titles (联单台账-移出-….csv).
VIEW_ZH = {"outgoing": "移出", "incoming": "接收", "transported": "运输", "managed": "辖区"}
# The exports' media types (the registry's, the job queue's and the statistics' downloads).
CSV_MIME = "text/csv; charset=utf-8"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# How many rows one round trip to the database brings: enough to amortise it, small enough to
# keep the peak memory a few MB whatever the registry's length.
CHUNK = 2000
EXPORT_CHUNK = 2000
CSV_ROWS_PER_PIECE = 2000  # ≈ 0.6 MB of CSV a streamed piece

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
# What each column's cells are in the exports: times (local, to the second), integers and exact
# masses (numbers in XLSX), or text (made formula-safe).
TIME_FIELDS = frozenset(("created_at", "submitted_at", "picked_up_at", "received_at", "processed_at"))
NUMBER_FIELDS = frozenset(("line_id", "line_no", "quantity_kg", "received_kg", "accepted_kg"))
TEXT_FIELDS = frozenset(FIELDS) - TIME_FIELDS - NUMBER_FIELDS


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


# ---------------------------------------------------------------- rows for the exports

ExportRow = tuple[str, ...]


def export_rows(
    session: Session, actor: Principal, view: str, filters: RegistryFilters | None = None
) -> Iterator[ExportRow]:
    """The registry's rows for the CSV and XLSX exports: tuples in :data:`FIELDS` order, each
    cell the text the file shows (``""`` when empty): times local to the second, masses exact
    (``1000.001``), text as stored (the writers make it formula-safe). Checks the view before the
    first row is asked for, as :func:`registry_rows`."""
    query = registry_query(actor, view, filters or RegistryFilters())
    if session.get_bind().dialect.name == "postgresql":
        return _postgresql_rows(session, query)
    return _python_rows(session, query)


def _postgresql_rows(session: Session, query) -> Iterator[ExportRow]:
    """The database renders every cell as text; a psycopg server-side cursor brings them in chunks
    of plain tuples (no SQLAlchemy row or type processing: ≈ 3 µs of client CPU a row)."""
    rendered: list[ColumnElement[Any]] = []
    for name, column in zip(FIELDS, query.selected_columns, strict=True):
        text: ColumnElement[Any]
        if name in TIME_FIELDS:
            text = func.to_char(func.timezone("Asia/Shanghai", column), "YYYY-MM-DD HH24:MI:SS")
        elif name in NUMBER_FIELDS:
            text = cast(column, Text)  # NUMERIC(14, 3) prints its three decimals
        else:
            text = type_coerce(column, Text)
        rendered.append(func.coalesce(text, ""))
    connection = session.connection()
    dialect = connection.dialect
    compiled = query.with_only_columns(*rendered).compile(dialect=dialect)
    params = {}
    for name, value in compiled.params.items():  # as SQLAlchemy would bind them (enums → values)
        process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        params[name] = process(value) if process else value
    import psycopg  # the PostgreSQL driver: only there

    driver = cast_type(psycopg.Connection, connection.connection.dbapi_connection)
    cursor = driver.cursor(name=f"registry_export_{id(compiled)}")
    try:
        cursor.itersize = EXPORT_CHUNK
        cursor.execute(str(compiled), params)
        while chunk := cursor.fetchmany(EXPORT_CHUNK):
            yield from chunk
            del chunk  # before the next fetch: one chunk in memory at a time, not two
    finally:
        cursor.close()


# Asia/Shanghai has kept UTC+8 without daylight saving since 1991: a fixed offset converts many
# times faster than the zone database (the exports convert five times per row).
_UTC8 = timezone(timedelta(hours=8))


def _local_text(value: Any) -> str:
    if value is None:
        return ""
    local = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(_UTC8)
    return local.isoformat(" ", "seconds")[:19]


def _plain_text(value: Any) -> str:
    return "" if value is None else str(value)  # Decimal("1000.001"), 7, ManifestStatus → its value


def _python_rows(session: Session, query) -> Iterator[ExportRow]:
    """The same cells made in Python from the typed values (SQLite, the embedded default)."""
    formats = [_local_text if name in TIME_FIELDS else _plain_text for name in FIELDS]
    result = session.execute(query.execution_options(yield_per=EXPORT_CHUNK, stream_results=True))
    try:
        for row in result:
            yield tuple([f(v) for f, v in zip(formats, row, strict=True)])
    finally:
        result.close()


# ---------------------------------------------------------------- cells and writers

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Control characters (but the tab) become spaces: they break CSV readers and are invalid in XLSX.
_CONTROL = {c: " " for c in range(32) if c != 9}


def safe_text(value: str) -> str:
    """Text a spreadsheet would run as a formula kept as text (leading apostrophe), control
    characters replaced."""
    value = value.translate(_CONTROL)
    return "'" + value if value.lstrip(" ").startswith(FORMULA_START) else value


def csv_field(value: str) -> str:
    """A CSV field (RFC 4180, as :mod:`csv`'s minimal quoting): quoted when it holds a comma, a
    quote or a line break, its quotes doubled."""
    if '"' in value or "," in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def write_csv(rows: Iterable[ExportRow], fp: IO[bytes], lang: str = "zh") -> int:
    """UTF-8 CSV with a BOM (Excel on Chinese Windows) of :func:`export_rows` into ``fp``;
    returns the number of rows."""
    counted = _Counted(rows)
    for piece in csv_chunks(counted, lang):
        fp.write(piece)
    return counted.count


def csv_chunks(rows: Iterable[ExportRow], lang: str = "zh", chunk: int = CSV_ROWS_PER_PIECE) -> Iterator[bytes]:
    """The CSV of :func:`export_rows` in pieces of ``chunk`` rows: what a streamed response sends.

    The lines are joined here rather than by :mod:`csv`'s writer: only the text columns can need
    quoting (times and numbers never do), and their quoted forms are remembered with the
    formula-safe ones, which makes the CSV ≈ 2× faster (tests/ledger/test_registry_files.py
    checks the bytes equal the writer's)."""
    cell = [
        BoundedMemo(lambda value: csv_field(safe_text(value))).__getitem__ if name in TEXT_FIELDS else str
        for name in FIELDS
    ]
    pending = ["\ufeff" + ",".join(csv_field(text) for text in header(lang))]
    for row in rows:
        pending.append(",".join(map(call, cell, row)))  # str(text) is the text itself
        if len(pending) >= chunk:
            pending.append("")  # the last line's end
            yield "\r\n".join(pending).encode("utf-8")
            pending.clear()
    pending.append("")
    yield "\r\n".join(pending).encode("utf-8")


class _Counted:
    def __init__(self, rows: Iterable[ExportRow]):
        self.rows = rows
        self.count = 0

    def __iter__(self) -> Iterator[ExportRow]:
        for row in self.rows:
            self.count += 1
            yield row


XLSX_KINDS = tuple(
    xlsx_stream.NUMBER
    if name in NUMBER_FIELDS
    else xlsx_stream.SAFE_TEXT
    if name in TIME_FIELDS  # digits, dashes, colons and a space
    else xlsx_stream.TEXT
    for name in FIELDS
)


def write_xlsx(rows: Iterable[ExportRow], fp: IO[bytes], lang: str = "zh", title: str = "registry") -> int:
    """An XLSX of :func:`export_rows` (one sheet, bold frozen header; integers and masses are
    numbers, times and text are text cells, never formulas) streamed into ``fp`` by
    :mod:`xlsx_stream`; returns the number of rows written."""
    return xlsx_stream.write_xlsx(fp, title or "registry", header(lang), XLSX_KINDS, rows, prepare=safe_text)
