"""``flask --app wsgi demo generate --scale N``: a city-sized data set for the benchmarks.

Scale 1 is 10,000 boxes (1,000 enterprises, 10 boxes each, as product.md plans a city: 10,000
enterprises and 100,000 boxes at scale 10), one box in ten with sensors and 1,000 readings a
sensor box (10⁶ readings at scale 1, 10⁷ at 10), and 10 closed manifests a box (10⁵ at scale 1,
10⁶ at 10). Fractions work (``--scale 0.01``: 100 boxes).

What goes through which path, and why:

* organisations, users and parks through :mod:`app.accounts.services` (the enterprises in bulk, as
  ``create_organization`` stores them); boxes, their registration events, first colours and first
  fills in bulk as ``register_box`` and ``record_fill`` store them (one call per box costs tens
  of statements, the registration has no bulk import), a commit per chunk, then every box's colour
  evaluated and stored by the product's own sweep of boxes without a stored evaluation;
* readings and manifests are the domains' parts (:func:`app.common.wiring.generate_extensions`,
  as ``flask demo`` has its extensions): the telemetry's sends every reading through the ingest
  service as a gateway's JSON body (:mod:`app.telemetry.generate`); the ledger's writes closed
  manifests with their records in bulk (the step services cost tens of statements a manifest,
  days at 10⁶).

The services only flush; ``commit`` (the CLI's) ends each chunk, so a load of millions of rows
never holds one transaction. Nothing here is random but through ``rng`` (seeded): the same scale
gives the same data set.

Parts that do not depend on each other run at once on PostgreSQL (a tuple of extensions in the
list: the readings and the manifests), each on its own session (``worker_session``) and with its
own seeded ``rng``: ingest is mostly Python and the manifests' COPY mostly the database's work,
so on two cores they take little more than the longer of the two. Neither reads what the other
writes: the manifests ship all of each generation record (no waste left on site), so the colour
facts ingest evaluates are the same with or without them. SQLite (one writer at a time) runs
them one after the other.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy import types as sa_types
from sqlalchemy.orm import Session

from app.accounts.models import Organization, OrganizationRole, User
from app.accounts.reference import ensure_counties
from app.accounts.services import Principal, create_organization, create_park, create_user
from app.boxes import codes
from app.boxes.models import Box, BoxEvent, ColourChange, Fill
from app.boxes.services.colours import refresh_due_chunk

COUNTIES = ("331002", "331003", "331004", "331022", "331023", "331024", "331081", "331082", "331083")
BOXES_PER_SCALE = 10_000
BOXES_PER_ENTERPRISE = 10
SENSOR_EVERY = 10  # one box in ten has sensors and readings
READINGS_PER_SENSOR_BOX = 1_000  # one a minute: the last 16⅔ hours
MANIFESTS_PER_BOX = 10
#: Besides them, sensor boxes left without readings (one for every ten that report): the bench
#: measures first readings on them, and the readings stay 10⁶ per scale (10⁷ at 10×).
FIRST_READING_RESERVE = 10
PASSWORD = "bench-password-1"
#: The logins the bench uses: (username, organisation key, role) — see :func:`_users`.
#: Each registry view has a party with rows: the consignor (outgoing: the first enterprise), the
#: first receiver (incoming), the first carrier (transported), the regulators (managed).
LOGINS = (
    ("bench", None, "admin"),
    ("city", "regulator:city", "staff"),
    ("county", "regulator:331023", "staff"),
    ("consignor", "enterprise:0", "staff"),
    ("receiver", "receiver:0", "staff"),
    ("carrier", "carrier:0", "staff"),
)
CHUNK = 500  # boxes per commit
BOX_TABLES = (Box, BoxEvent, ColourChange, Fill)  # in dependency order


@dataclass(frozen=True)
class Plan:
    boxes: int
    enterprises: int
    sensor_boxes: int
    readings_per_sensor_box: int
    manifests: int

    @classmethod
    def for_scale(cls, scale: float, readings_per_box: int = READINGS_PER_SENSOR_BOX) -> Plan:
        boxes = max(BOXES_PER_ENTERPRISE, round(BOXES_PER_SCALE * scale))
        reporting = max(1, boxes // SENSOR_EVERY)
        sensors = reporting + max(1, reporting // FIRST_READING_RESERVE)
        return cls(
            boxes=boxes,
            enterprises=max(1, boxes // BOXES_PER_ENTERPRISE),
            sensor_boxes=sensors,
            readings_per_sensor_box=readings_per_box,
            manifests=boxes * MANIFESTS_PER_BOX,
        )

    @property
    def reading_boxes(self) -> int:
        """Sensor boxes that get readings (the rest are kept for first readings)."""
        return max(1, self.boxes // SENSOR_EVERY)


@dataclass
class GenerateContext:
    """What the domains' generators are given: the plan, the moment, the actors and the ids made."""

    plan: Plan
    now: datetime
    rng: random.Random
    operator: Principal
    commit: Callable[[], None]
    progress: Callable[[str], None]
    enterprise_ids: list[int] = field(default_factory=list)
    box_ids: list[int] = field(default_factory=list)  # in registration order
    sensor_codes: list[str] = field(default_factory=list)  # of the boxes that get readings
    reserve_codes: list[str] = field(default_factory=list)  # sensor boxes left without readings
    organisations: dict[str, int] = field(default_factory=dict)  # key -> id (regulators, carriers, receivers)
    counts: dict[str, int] = field(default_factory=dict)

    def forget(self, session: Session) -> None:
        """Empty the session's identity map (a chunk's rows are not needed again) but keep the operator."""
        operator_id = self.operator.user.id if self.operator.user else None
        session.expunge_all()
        self.operator = Principal(user=session.get(User, operator_id))


GenerateExtension = Callable[[Session, GenerateContext], None]
#: An extension, or extensions that may run at once (each on its own session).
GeneratePart = GenerateExtension | tuple[GenerateExtension, ...]
SEED = 20261203


def database_is_empty(session: Session) -> bool:
    return not (
        session.scalar(select(func.count()).select_from(Organization))
        or session.scalar(select(func.count()).select_from(Box))
    )


def generate(
    session: Session,
    scale: float,
    now: datetime,
    extensions: tuple[GeneratePart, ...],
    commit: Callable[[], None],
    progress: Callable[[str], None] = lambda _msg: None,
    readings_per_box: int = READINGS_PER_SENSOR_BOX,
    worker_session: Callable[[], AbstractContextManager[Session]] | None = None,
    registered: tuple[GenerateExtension, ...] = (),
) -> GenerateContext:
    """Load the data set of ``scale`` into an empty database (the caller checks it is empty).
    ``registered``: the domains' bulk counterparts of the wiring's ``box_registered`` hooks, run
    once the boxes are stored, before their colours are evaluated.
    ``worker_session``: a new session of the same database for a part run at once with others,
    opened in the thread that uses it; without it (or on SQLite) every part runs in turn."""
    ensure_counties(session)
    operator = User(username="bench", display_name="基准测试运维", is_operator=True, role="admin", password_hash="")
    session.add(operator)
    session.flush()
    ctx = GenerateContext(
        plan=Plan.for_scale(scale, readings_per_box),
        now=now,
        rng=random.Random(SEED),
        operator=Principal(user=operator),
        commit=commit,
        progress=progress,
    )
    _organisations(session, ctx)
    _users(session, ctx, operator)
    commit()
    _boxes(session, ctx, registered)
    _analyze(session, ctx)
    concurrent = worker_session is not None and session.get_bind().dialect.name == "postgresql"
    for part in extensions:
        if not isinstance(part, tuple):
            part(session, ctx)
            commit()
            continue
        contexts = [_own_rng(ctx, n) for n in range(len(part))]  # (seeded in order, before any runs)
        if concurrent:
            assert worker_session is not None
            _run_together(session, part, contexts, worker_session)
        else:
            for extension, own in zip(part, contexts, strict=True):
                extension(session, own)
                commit()
        operator_id = ctx.operator.user.id if ctx.operator.user else None
        ctx.operator = Principal(user=session.get(User, operator_id))  # (a part may have emptied the session)
        _analyze(session, ctx)
    commit()
    return ctx


def _analyze(session: Session, ctx: GenerateContext) -> None:
    """Planner statistics for what a phase loaded, before the next phase queries it. A bulk load
    outruns autovacuum (and a server may run without it, as the benchmark machine's does): the next
    phase's statements, and the benchmark's, would be planned on an empty table's estimates."""
    if session.get_bind().dialect.name != "postgresql":
        return
    ctx.commit()
    session.execute(text("ANALYZE"))
    ctx.commit()
    ctx.progress("planner statistics updated (ANALYZE)")


def _own_rng(ctx: GenerateContext, n: int) -> GenerateContext:
    """The context of the ``n``-th of parts run together: its own seeded ``rng`` (so its data do
    not depend on how the parts interleave), the rest shared (``counts`` too)."""
    return replace(ctx, rng=random.Random(f"{SEED}/{ctx.rng.random()}/{n}"))


def _run_together(
    session: Session,
    extensions: tuple[GenerateExtension, ...],
    contexts: list[GenerateContext],
    worker_session: Callable[[], AbstractContextManager[Session]],
) -> None:
    """The first extension on ``session`` in this thread, each other on a new session in a
    thread of its own; the first failure is raised once all have ended."""
    failures: list[BaseException] = []
    main = contexts[0]
    operator_id = main.operator.user.id if main.operator.user else None

    def run(extension: GenerateExtension, own: GenerateContext) -> None:
        try:
            with worker_session() as worker:
                own.operator = Principal(user=worker.get(User, operator_id))
                own.commit = worker.commit
                extension(worker, own)
                worker.commit()
        except BaseException as exc:  # raised in the caller's thread below
            failures.append(exc)

    threads = [
        threading.Thread(target=run, args=(extension, own), name=f"generate-{n}", daemon=True)
        for n, (extension, own) in enumerate(zip(extensions, contexts, strict=True))
        if n
    ]
    for thread in threads:
        thread.start()
    try:
        extensions[0](session, main)
        main.commit()
    except BaseException as exc:
        failures.insert(0, exc)
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def _organisations(session: Session, ctx: GenerateContext) -> None:
    actor = ctx.operator
    orgs = ctx.organisations
    orgs["regulator:city"] = create_organization(
        session, actor, {"name": "台州市生态环境局（基准）", "roles": ["regulator"]}
    ).id
    parks = {}
    for county in COUNTIES:
        orgs[f"regulator:{county}"] = create_organization(
            session, actor, {"name": f"生态环境分局{county}（基准）", "roles": ["regulator"], "county_code": county}
        ).id
        parks[county] = create_park(session, actor, {"name": f"基准产业园区{county}", "county_code": county}).id
    for i in range(3):
        orgs[f"receiver:{i}"] = create_organization(
            session,
            actor,
            {
                "name": f"基准再生炭利用处置有限公司{i}",
                "roles": ["receiver", "regenerator"],
                "county_code": COUNTIES[i],
            },
        ).id
    for i in range(2):
        orgs[f"carrier:{i}"] = create_organization(
            session, actor, {"name": f"基准危险货物运输有限公司{i}", "roles": ["carrier"], "county_code": COUNTIES[i]}
        ).id
    # The enterprises in bulk, as create_organization stores them (an organisation and its role
    # row): the per-row service costs ~10 statements, minutes at 10,000 enterprises here.
    next_id = (session.scalar(select(func.max(Organization.id))) or 0) + 1
    rows, roles = [], []
    for i in range(ctx.plan.enterprises):
        county = COUNTIES[i % len(COUNTIES)]
        rows.append(
            {"id": next_id + i, "name": f"台州基准企业{i:05d}有限公司", "uscc": None, "county_code": county,
             # a third of the enterprises are in their county's park
             "park_id": parks[county] if i % 3 == 0 else None, "licences": [], "contact_phone": None,
             "address": None, "created_at": ctx.now - timedelta(days=400)}
        )  # fmt: skip
        roles.append({"organization_id": next_id + i, "role": "generator"})
        ctx.enterprise_ids.append(next_id + i)
    for begin in range(0, len(rows), 5_000):
        bulk_insert(session, Organization, rows[begin : begin + 5_000])
        bulk_insert(session, OrganizationRole, roles[begin : begin + 5_000])
    set_sequences(session, (Organization,))
    orgs["park"] = parks["331023"]
    ctx.counts["organizations"] = len(orgs) - 1 + len(ctx.enterprise_ids)


def _users(session: Session, ctx: GenerateContext, operator: User) -> None:
    from app.accounts.services import set_password

    set_password(session, operator, PASSWORD)
    for username, org_key, role in LOGINS:
        if org_key is not None:
            create_user(
                session,
                ctx.operator,
                {
                    "username": username,
                    "password": PASSWORD,
                    "organization_id": ctx.enterprise_ids[0]
                    if org_key == "enterprise:0"
                    else ctx.organisations[org_key],
                    "role": role,
                },
            )


def _boxes(session: Session, ctx: GenerateContext, on_registration: tuple[GenerateExtension, ...] = ()) -> None:
    """The boxes and their first fills, ``CHUNK`` a commit, what the domains make at registration
    (``on_registration``), then their colours evaluated (see :func:`_evaluate_all`)."""
    plan, rng, now = ctx.plan, ctx.rng, ctx.now
    enterprises = {o.id: o.county_code for o in session.scalars(select(Organization))}
    ids = {m.__tablename__: (session.scalar(select(func.max(m.id))) or 0) + 1 for m in BOX_TABLES}
    taken: set[str] = set(session.scalars(select(Box.code)))
    actor = ctx.operator.label
    operator_id = ctx.operator.user.id if ctx.operator.user else None
    sensor_index = 0
    for begin in range(0, plan.boxes, CHUNK):
        rows: dict[str, list[dict[str, Any]]] = {m.__tablename__: [] for m in BOX_TABLES}
        for i in range(begin, min(begin + CHUNK, plan.boxes)):
            enterprise = ctx.enterprise_ids[i % len(ctx.enterprise_ids)]
            # Every tenth box reports; the reserve (without readings) is taken from the boxes
            # in between, one in a hundred.
            reporting = i % SENSOR_EVERY == 0 and sensor_index < plan.reading_boxes
            reserve = i % (SENSOR_EVERY * FIRST_READING_RESERVE) == SENSOR_EVERY // 2 and len(ctx.reserve_codes) < (
                plan.sensor_boxes - plan.reading_boxes
            )
            sensors = reporting or reserve
            code = _new_code(rng, enterprises[enterprise], taken)
            box_id = _take(ids, "boxes")
            registered = now - timedelta(days=45, hours=rng.random() * 24)
            # Filled 1 to 14 days ago: the colours spread over green, yellow and red; a sensor
            # box's fill is older than its readings (the last 16⅔ hours).
            filled_at = now - timedelta(days=1 + rng.random() * 13)
            rows["boxes"].append(_box_row(box_id, code, enterprise, i // len(ctx.enterprise_ids), sensors, registered))
            rows["box_events"].append(
                {"id": _take(ids, "box_events"), "box_id": box_id, "kind": "registered", "at": registered,
                 "actor": actor, "detail": {"code": code}}
            )  # fmt: skip
            rows["colour_changes"].append(
                {"id": _take(ids, "colour_changes"), "box_id": box_id, "colour": "grey", "previous_colour": None,
                 "changed_at": registered, "recorded_at": registered, "rules_version": "",
                 "reasons": [{"code": "no_active_fill", "level": "grey"}]}
            )  # fmt: skip
            rows["fills"].append(_fill_row(_take(ids, "fills"), box_id, filled_at, operator_id, now))
            ctx.box_ids.append(box_id)
            if reporting:
                ctx.sensor_codes.append(code)
                sensor_index += 1
            elif reserve:
                ctx.reserve_codes.append(code)
        for model in BOX_TABLES:
            bulk_insert(session, model, rows[model.__tablename__])
        ctx.commit()
        ctx.progress(f"{min(begin + CHUNK, plan.boxes)} boxes registered")
    set_sequences(session, BOX_TABLES)
    ctx.commit()
    for hook in on_registration:
        hook(session, ctx)
        ctx.commit()
    _evaluate_all(session, ctx)
    ctx.counts["boxes"] = plan.boxes
    ctx.counts["sensor_boxes"] = len(ctx.sensor_codes) + len(ctx.reserve_codes)


def _evaluate_all(session: Session, ctx: GenerateContext) -> None:
    """Every box's colour evaluated and stored by the product's own path for boxes without a
    stored evaluation (what the sweep does after the migration that brought stored colours)."""
    done = 0
    while True:
        n = refresh_due_chunk(session, ctx.now, CHUNK, unstored=True)
        ctx.commit()
        ctx.forget(session)
        done += n
        if n < CHUNK:
            break
        if done % 5_000 == 0:
            ctx.progress(f"{done} colours evaluated")
    if done % 5_000:
        ctx.progress(f"{done} colours evaluated")


def _new_code(rng: random.Random, county_code: str | None, taken: set[str]) -> str:
    while True:
        code = codes.make_code(county_code, "".join(rng.choice(codes.ALPHABET) for _ in range(5)))
        if code not in taken:
            taken.add(code)
            return code


def _box_row(box_id: int, code: str, enterprise: int, n: int, sensors: bool, registered: datetime) -> dict[str, Any]:
    """What ``register_box`` stores for the bench's box design (before its first evaluation)."""
    return {
        "id": box_id,
        "code": code,
        "enterprise_id": enterprise,
        "service_org_id": None,
        "name": "",
        "facility_code": f"TA{n:03d}",
        "outlet_code": "DA001",
        "carbon_type": "granular",
        "design_fill_kg": Decimal(2000),
        "design_airflow_m3_h": 15000.0,
        "design_removed_mg_m3": 80.0,
        "hours_per_day": 16.0,
        "adsorption_capacity": 0.10,
        "emission_limit_mg_m3": 60.0,
        "pressure_drop_min_pa": 300.0 if sensors else None,
        "pressure_drop_max_pa": 1200.0 if sensors else None,
        "has_sensors": sensors,
        "waste_code": "900-039-49",
        "status": "active",
        "label_version": 1,
        "revision": 2,  # registered, filled
        "colour": "grey",
        "colour_since": registered,
        "colour_evaluated_at": None,
        "colour_reasons": [],
        # colour_detail left out, so SQL NULL (a JSON None would be 'null'): no stored
        # evaluation yet, which _evaluate_all finds and stores
        "created_at": registered,
    }


def _fill_row(fill_id: int, box_id: int, filled_at: datetime, user_id: int | None, now: datetime) -> dict[str, Any]:
    """What ``record_fill`` stores for a first (initial) fill; no fill hook acts on an initial fill
    without a regeneration batch."""
    return {
        "id": fill_id,
        "box_id": box_id,
        "kind": "initial",
        "filled_at": filled_at,
        "mass_kg": Decimal(2000),
        "carbon_type": "granular",
        "supplier_org_id": None,
        "supplier_name": "",
        "batch_no": "",
        "iodine_mg_g": 900.0,
        "regeneration_batch_id": None,
        "removed_waste_kg": None,
        "replaced_overdue": None,
        "confirmed_unusual": False,
        "performed_by_org_id": None,
        "recorded_by_user_id": user_id,
        "note": "",
        "created_at": filled_at,
    }


def _take(ids: dict[str, int], table: str) -> int:
    value = ids[table]
    ids[table] = value + 1
    return value


def bulk_insert(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``model``'s table: COPY on PostgreSQL (the
    values bound by the columns' own types first, as an INSERT would bind them), one executemany
    elsewhere (SQLite)."""
    if not rows:
        return
    table = model.__table__
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    names = list(rows[0])
    processors = [table.c[name].type._cached_bind_processor(conn.dialect) for name in names]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    value if p is None or value is None else p(value)
                    for p, value in zip(processors, row.values(), strict=True)
                ]
            )


def bulk_rows(session: Session, model: Any, names: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert ``rows``, tuples of the columns ``names``, into ``model``'s table, for loads of
    millions of rows where :func:`bulk_insert`'s dict and bind processor per value cost more than
    the database: the values must be what the columns' types bind them to (UTC datetimes, masses
    as Decimals to the gram, JSON columns as their JSON text). COPY on PostgreSQL; on SQLite one
    executemany of the same rows through the table (JSON text decoded back, so the column's
    type writes it as it writes any value)."""
    if not rows:
        return
    table = model.__table__
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        import json

        as_json = [i for i, name in enumerate(names) if isinstance(table.c[name].type, sa_types.JSON)]
        dicts = []
        for row in rows:
            values = dict(zip(names, row, strict=True))
            for i in as_json:
                values[names[i]] = json.loads(row[i])
            dicts.append(values)
        session.execute(insert(table), dicts)
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        write = copy.write_row
        for row in rows:
            write(row)


def set_sequences(session: Session, models) -> None:
    """After rows inserted with explicit ids, PostgreSQL's id sequences carry on after them."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for model in models:
        table = model.__tablename__
        session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
