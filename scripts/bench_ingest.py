"""Ingest benchmark: POST /api/v1/readings (in-process and gunicorn) against raw sqlite3 inserts.

    .venv/bin/python scripts/bench_ingest.py [--readings 100000] [--boxes 8] [--threads 4]
    .venv/bin/python scripts/bench_ingest.py --postgresql [--readings 100000] [--boxes 1000] [--threads 4]
    .venv/bin/python scripts/bench_ingest.py --postgresql --profile [--readings 5000]

``--profile``: after the set-up and the first readings, cProfile of the in-process run only
(the functions by cumulative and by own time), for finding where a batch's time goes.

With ``--postgresql`` (issue 12): a scratch PostgreSQL database (127.0.0.1:5432, or $BENCH_PG_URL)
migrated to head (so ``sensor_readings`` is partitioned by month, as in production), 1,000 boxes
by default so that every batch carries 1,000 distinct boxes (with ``--boxes`` above 1,000, each
batch draws 1,000 distinct boxes at random; with exactly 1,000 every batch locks every box's
state, so gunicorn's two workers take turns: a city's batches rarely share a box), and as the
baseline psycopg 3
``COPY`` of the very rows of each batch into the app's ``sensor_readings`` (same table, same
partitions and key; rolled back, so the run's own readings stay new), one transaction per batch.
It prints the first batch (every box's first reading) apart, then the sustained rate through
``gunicorn -w 2`` and its ratio to COPY (target ≥ 5,000 readings/s and ≥ 0.25).

Builds a fresh SQLite database in a temporary folder (create_all), a few boxes with a fill and a
device token, makes the request bodies (batches of 1,000 readings, one reading per box per 10 s,
every reading new), and prints readings/s for
1. the baselines, raw ``sqlite3.executemany`` of the very rows the in-process run stores
   (box ids, UTC timestamps in the text form the app stores, values; in request order):
   - same-schema: into a table made with the app's own ``sensor_readings`` DDL (same columns,
     primary key (box_id, ts) and indexes, read from the app's database), with the app's pragmas
     (WAL, synchronous=NORMAL) and one transaction per 1,000-row batch, as the app commits per
     batch. This is the baseline of the target;
   - plain table: the earlier baseline, into a table with no key or index, all rows in one
     transaction (an upper bound for SQLite on this machine, not the same work);
   each is measured before and after the in-process run and the faster of the two is kept, so
   that a busy machine lowers the ratio rather than raising it;
2. HTTP ingest through the Flask test client (in-process, one client), and its ratio to both;
3. HTTP ingest through ``gunicorn -w 2`` with several client threads.
Targets: ≥ 0.30 of the same-schema baseline in-process; ≥ 5,000 readings/s through gunicorn with
2 workers. It prints, never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCH = 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(db_path: Path | None, n_boxes: int, filled_at: datetime | None = None) -> tuple[list[str], str]:
    from werkzeug.security import generate_password_hash

    from app import create_app
    from app.accounts.models import User
    from app.accounts.reference import ensure_counties
    from app.accounts.services import Principal, create_organization, issue_device_token
    from app.boxes.services import record_fill, register_box
    from app.extensions import db

    app = create_app()
    with app.app_context():
        if db_path is None:  # PostgreSQL: the production schema (partitioned readings)
            from flask_migrate import upgrade

            upgrade(directory=str(ROOT / "migrations"))
        else:
            db.create_all()
        ensure_counties(db.session)
        op = User(
            username="bench-op",
            display_name="bench",
            is_operator=True,
            role="admin",
            password_hash=generate_password_hash("bench-password"),
        )
        db.session.add(op)
        db.session.flush()
        actor = Principal(user=op)
        org = create_organization(
            db.session, actor, {"name": "天台基准测试有限公司", "roles": ["generator"], "county_code": "331023"}
        )
        filled_at = filled_at or datetime.now(UTC) - timedelta(days=400)
        codes = []
        for i in range(n_boxes):
            box = register_box(
                db.session,
                actor,
                {
                    "enterprise_id": org.id,
                    "facility_code": f"TA{i:03d}",
                    "outlet_code": "DA001",
                    "carbon_type": "granular",
                    "design_fill_kg": 2000.0,
                    "design_airflow_m3_h": 15000.0,
                    "design_removed_mg_m3": 80.0,
                    "hours_per_day": 16.0,
                    "emission_limit_mg_m3": 60.0,
                    "has_sensors": True,
                    "pressure_drop_min_pa": 300.0,
                    "pressure_drop_max_pa": 1200.0,
                },
            )
            # 200 t: a box that never saturates during the run (unusual for its design: confirmed).
            fill = {"mass_kg": 200000.0, "iodine_mg_g": 950.0, "filled_at": filled_at, "confirm_unusual": True}
            record_fill(db.session, actor, box, fill)
            codes.append(box.code)
        token, _ = issue_device_token(db.session, actor, org.id, "bench gateway")
        db.session.commit()
        db.engine.dispose()
    return codes, token


def make_bodies(codes: list[str], n: int, start: datetime, seed: int = 12, drawn: bool = True) -> list[bytes]:
    """Batches of 1,000 readings, every reading new. Fewer boxes than a batch: one reading per
    box per 10 s, in box order. Otherwise (issue 12) each batch is 1,000 distinct boxes drawn at
    random (a random order too, never the same boxes in the same order), all read at the
    batch's instant, batches 10 s apart."""
    import random

    rng = random.Random(seed)
    bodies = []
    for b in range(0, n, BATCH):
        items = []
        chosen = rng.sample(codes, min(BATCH, n - b)) if drawn and len(codes) >= BATCH else None
        for i in range(b, min(b + BATCH, n)):
            if chosen is None:
                code = codes[i % len(codes)]
                ts = start + timedelta(seconds=10 * (i // len(codes)))
            else:
                code = chosen[i - b]
                ts = start + timedelta(seconds=10 * (b // BATCH))
            items.append(
                {
                    "box_code": code,
                    "ts": ts.isoformat(),
                    "inlet_mg_m3": 100.0 + i % 7,
                    "outlet_mg_m3": 20.0,
                    "airflow_m3_h": 15000.0,
                    "pressure_drop_pa": 800.0,
                    "inlet_temp_c": 30.0,
                    "bed_temp_c": 35.0,
                    "rh_pct": 55.0,
                    "running": True,
                }
            )
        bodies.append(json.dumps({"readings": items}).encode())
    return bodies


def baseline_rows(app_db: Path, bodies: list[bytes]) -> list[list[tuple]]:
    """The rows the in-process run stores, batch by batch: (box_id, ts as stored, *measures, running)."""
    from app.common.timeutil import as_utc
    from app.telemetry.models import MEASURES

    with sqlite3.connect(app_db) as con:
        box_ids = dict(con.execute("SELECT code, id FROM boxes"))
    batches = []
    for body in bodies:
        batches.append(
            [
                (
                    box_ids[r["box_code"]],
                    as_utc(datetime.fromisoformat(r["ts"]))
                    .replace(tzinfo=None)
                    .isoformat(sep=" ", timespec="microseconds"),
                    *(r.get(m) for m in MEASURES),
                    r["running"],
                )
                for r in json.loads(body)["readings"]
            ]
        )
    return batches


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    return con


def same_schema_baseline(path: Path, app_db: Path, batches: list[list[tuple]]) -> float:
    """executemany into the app's sensor_readings schema, one transaction per batch."""
    with sqlite3.connect(app_db) as app_con:
        ddl = [
            sql
            for (sql,) in app_con.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'sensor_readings' AND sql IS NOT NULL ORDER BY type DESC"
            )
        ]
    path.unlink(missing_ok=True)
    con = _connect(path)
    for sql in ddl:
        con.execute(sql)
    con.commit()
    insert = f"INSERT INTO sensor_readings VALUES ({', '.join('?' * len(batches[0][0]))})"
    started = time.perf_counter()
    for rows in batches:
        con.executemany(insert, rows)
        con.commit()
    elapsed = time.perf_counter() - started
    con.close()
    return sum(map(len, batches)) / elapsed


def plain_baseline(path: Path, batches: list[list[tuple]]) -> float:
    """executemany into a table without key or index, every row in one transaction."""
    path.unlink(missing_ok=True)
    con = _connect(path)
    con.execute(
        "CREATE TABLE plain (box_id INTEGER, ts TEXT, inlet REAL, outlet REAL, airflow REAL, "
        "pressure_drop REAL, inlet_temp REAL, bed_temp REAL, rh REAL, running INTEGER)"
    )
    rows = [row for batch in batches for row in batch]
    started = time.perf_counter()
    con.executemany("INSERT INTO plain VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.commit()
    elapsed = time.perf_counter() - started
    con.close()
    return len(rows) / elapsed


def in_process(codes, token, bodies) -> float:
    from app import create_app

    app = create_app()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started = time.perf_counter()
    total = 0
    for body in bodies:
        r = client.post("/api/v1/readings", data=body, headers=headers)
        assert r.status_code == 200, r.get_data(as_text=True)
        total += r.get_json()["accepted"]
    return total / (time.perf_counter() - started)


def through_gunicorn(env, token, bodies, threads: int, root: Path = ROOT) -> float:
    port = free_port()
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=root,
        env={**env, "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("gunicorn did not start: " + proc.stderr.read().decode()[-2000:]) from None
                time.sleep(0.2)
        queue = list(bodies)
        lock = threading.Lock()
        accepted = [0]
        failures: list[str] = []

        def worker():
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop(0)
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/readings",
                    data=body,
                    method="POST",
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=120) as response:
                        n = json.loads(response.read())["accepted"]
                except OSError as exc:
                    failures.append(str(exc))
                    continue
                with lock:
                    accepted[0] += n

        started = time.perf_counter()
        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - started
        if failures:
            print(f"  {len(failures)} requests failed, e.g. {failures[0]}")
        return accepted[0] / elapsed
    finally:
        proc.terminate()
        proc.wait(10)


def pg_copy_baseline(url: str, bodies: list[bytes]) -> float:
    """psycopg 3 COPY of each batch's rows into the app's sensor_readings, one transaction per
    batch, rolled back (the readings stay new for the app's run). Rows as the app binds them."""
    import psycopg

    from app.common.timeutil import as_utc
    from app.telemetry.models import MEASURES

    con = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    box_ids = dict(con.execute("SELECT code, id FROM boxes").fetchall())
    con.rollback()
    batches = [
        [
            (
                box_ids[r["box_code"]],
                as_utc(datetime.fromisoformat(r["ts"])),
                *(r.get(m) for m in MEASURES),
                r["running"],
            )
            for r in json.loads(body)["readings"]
        ]
        for body in bodies
    ]
    columns = "box_id, ts, " + ", ".join(MEASURES) + ", running"
    started = time.perf_counter()
    for rows in batches:
        with con.cursor() as cur, cur.copy(f"COPY sensor_readings ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        con.rollback()
    elapsed = time.perf_counter() - started
    con.close()
    return sum(map(len, batches)) / elapsed


def vacuum(url: str) -> None:
    """VACUUM the tables every batch updates (each box's row in boxes, box_sensor_states and its
    hour's roll-up), as autovacuum does in service: a server run with autovacuum off (this
    machine's, while the data sets are generated) would otherwise measure the dead row versions
    of the previous phase (1,000 boxes × 100 batches)."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as con:
        setting = con.execute("SHOW autovacuum").fetchone()[0]
        con.execute("VACUUM (ANALYZE) boxes, box_sensor_states, sensor_reading_hours")
    print(f"  (VACUUM ANALYZE of boxes, box_sensor_states, sensor_reading_hours; autovacuum is {setting})")


def profile_in_process(token, bodies, top: int = 45) -> None:
    """cProfile of HTTP ingest in-process (test client): the functions by cumulative and own time."""
    import cProfile
    import pstats

    from app import create_app

    app = create_app()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for body in bodies:
        r = client.post("/api/v1/readings", data=body, headers=headers)
        assert r.status_code == 200, r.get_data(as_text=True)
    profiler.disable()
    elapsed = time.perf_counter() - started
    print(
        f"profiled {len(bodies)} batches in {elapsed:.2f} s ({len(bodies) * BATCH / elapsed:,.0f} readings/s, profiled)"
    )
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def main_postgresql(args) -> None:
    import sqlalchemy as sa

    admin_url = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    name = f"tanxiang_bench_ingest_{os.getpid()}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    env = {**os.environ, "DATABASE_URL": url, "INSTANCE_PATH": str(tmp / "instance"), "APP_ENV": "development"}
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "INSTANCE_PATH", "APP_ENV")})
    try:
        n = args.readings
        span = timedelta(seconds=10 * (n // min(args.boxes, BATCH) + 1))
        start = datetime.now(UTC) - 4 * span - timedelta(hours=1)
        started = time.perf_counter()
        # Filled two hours before the first reading: in service, not yet silent (a fill 400 days
        # back without readings is red for 72 h of silence, and every first reading a colour change).
        codes, token = setup(None, args.boxes, start - timedelta(hours=2))
        print(f"set up in {time.perf_counter() - started:.0f} s", flush=True)
        with admin.connect() as conn:
            version = conn.execute(sa.text("SHOW server_version")).scalar()
        print(
            f"PostgreSQL {version}, database {name} (migrated: partitioned readings); {args.boxes} boxes "
            f"(set up in {time.perf_counter() - started:.0f} s); {n} readings per run; batches of {BATCH}"
        )
        # The boxes were registered and evaluated before the readings' time, as in service (the
        # set-up ran just now; readings older than a box's last evaluation would be replayed as
        # late ones, which is not the steady state measured here).
        with sa.create_engine(url).begin() as conn:
            conn.execute(sa.text("UPDATE boxes SET colour_evaluated_at = :t"), {"t": start - timedelta(hours=1)})
        # Every box once, in order (not drawn), before the run's readings.
        first = make_bodies(codes, args.boxes, start - timedelta(seconds=10 * len(codes) // BATCH + 60), drawn=False)
        copy_rate = pg_copy_baseline(url, first)
        first_rate = in_process(codes, token, first)
        print(
            f"first readings (every box's first, in-process): {first_rate:>8,.0f} readings/s "
            f"= {first_rate / copy_rate:.3f} × COPY of the same rows ({copy_rate:,.0f} rows/s)"
        )
        bodies = make_bodies(codes, n, start)
        vacuum(url)
        if args.profile:
            profile_in_process(token, bodies)
            return
        # COPY twice before the run (the faster kept, so that a busy machine lowers the ratio).
        copy_rate = max(pg_copy_baseline(url, bodies), pg_copy_baseline(url, bodies))
        rate = in_process(codes, token, bodies)
        print(f"baseline, COPY:          {copy_rate:>10,.0f} rows/s  (psycopg 3 COPY into sensor_readings, per batch)")
        print(
            f"HTTP in-process (test client): {rate:>10,.0f} readings/s  = {rate / copy_rate:.3f} × COPY "
            f"(load average {os.getloadavg()[0]:.1f})"
        )
        later = make_bodies(codes, n, start + span)
        vacuum(url)
        copy_rate = max(copy_rate, pg_copy_baseline(url, later))
        rate = through_gunicorn(env, token, later, args.threads)
        print(
            f"HTTP gunicorn -w 2, {args.threads} threads: {rate:>10,.0f} readings/s  = {rate / copy_rate:.3f} × COPY "
            f"(targets ≥ 5,000 readings/s, ≥ 0.25 × COPY; load average {os.getloadavg()[0]:.1f})"
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _clone(admin, template: str, name: str) -> None:
    """CREATE DATABASE … TEMPLATE (refused while anyone is connected to the template: retried)."""
    import sqlalchemy as sa

    for attempt in range(60):
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
            return
        except sa.exc.OperationalError:
            if attempt == 59:
                raise
            time.sleep(5)


def clone_bodies(codes: list[str], start: datetime, batches: int, seed: int = 12) -> list[bytes]:
    """Batches of one reading for each of 1,000 distinct boxes drawn at random from ``codes``
    (all of them in a random order when there are 1,000 or fewer), a second apart."""
    import random

    rng = random.Random(seed)
    bodies = []
    for b in range(batches):
        drawn = rng.sample(codes, min(BATCH, len(codes)))
        ts = (start + timedelta(seconds=b)).isoformat()
        items = [
            {
                "box_code": code,
                "ts": ts,
                "running": True,
                "inlet_mg_m3": 90.0,
                "outlet_mg_m3": 12.0,
                "airflow_m3_h": 15000.0,
                "pressure_drop_pa": 700.0,
                "inlet_temp_c": 30.0,
                "bed_temp_c": 34.0,
                "rh_pct": 55.0,
            }
            for code in drawn
        ]
        bodies.append(json.dumps({"readings": items}).encode())
    return bodies


def main_compare(args) -> None:
    """The clone run (:func:`main_clone`) of the code at ``--compare DIR`` (e.g. the main
    worktree: the baseline) and of this one, alternately, ``--rounds`` times each, on one clone."""
    sides = [("baseline " + args.compare, Path(args.compare)), ("this tree", ROOT)]
    results = main_clone(args, sides, args.rounds)
    print(f"=== {args.clone}: readings/s through gunicorn -w 2, COPY rows/s, ratio, first readings/s (load average)")
    for label, runs in results.items():
        for rate, copy_rate, first_rate, load in runs:
            print(
                f"{label:<40} {rate:>8,.0f} {copy_rate:>9,.0f} {rate / copy_rate:6.3f} {first_rate:>7,.0f} ({load:.1f})"
            )


def main_clone(
    args, sides: list[tuple[str, Path]] | None = None, rounds: int = 1
) -> dict[str, list[tuple[float, float, float, float]]]:
    """Ingest on a clone of a generated data set (``flask demo generate``): boxes with a deep
    history. The clone is swept first (its boxes evaluated at the wall clock's now, as the sweep
    keeps them in service: the data set's evaluations are as old as the data set); then, for
    each round and each side (the code of a tree), batches of one reading for 1,000 boxes with
    readings (drawn at random, a second apart, from now) go through ``gunicorn -w 2``, against
    COPY of the same rows measured just before; then first readings of a share of the sensor
    boxes without readings (100 a request): each run has its own boxes, each box one first
    reading."""
    import sqlalchemy as sa

    sides = sides or [("this tree", ROOT)]
    admin_url = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    name = f"ingest_bench_{args.clone}_{os.getpid()}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    _clone(admin, args.clone, name)
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    env = {**os.environ, "DATABASE_URL": url, "INSTANCE_PATH": str(tmp / "instance"), "APP_ENV": "development"}
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "INSTANCE_PATH", "APP_ENV")})
    results: dict[str, list[tuple[float, float, float, float]]] = {}
    try:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
        began = time.perf_counter()
        subprocess.run(
            [str(ROOT / ".venv/bin/flask"), "--app", "wsgi", "boxes", "sweep"],
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
            check=True,
        )
        print(f"clone {name} of {args.clone}; swept in {time.perf_counter() - began:.0f} s", flush=True)
        with engine.begin() as conn:
            fed = list(conn.scalars(sa.text(
                "SELECT code FROM boxes b WHERE has_sensors AND EXISTS "
                "(SELECT 1 FROM sensor_readings r WHERE r.box_id = b.id) ORDER BY id"
            )))  # fmt: skip
            fresh = list(conn.scalars(sa.text(
                "SELECT code FROM boxes b WHERE has_sensors AND NOT EXISTS "
                "(SELECT 1 FROM sensor_readings r WHERE r.box_id = b.id) ORDER BY id"
            )))  # fmt: skip
        print(f"{len(fed)} boxes with readings, {len(fresh)} sensor boxes without")
        vacuum(url)
        token = _operator_token(env)
        share = len(fresh) // (rounds * len(sides))
        run = 0
        for round_ in range(rounds):
            for label, root in sides:
                start = datetime.now(UTC) - timedelta(seconds=5)
                bodies = clone_bodies(fed, start, args.readings // BATCH, seed=12 + run)
                mine = fresh[run * share : (run + 1) * share]
                run += 1
                first = []
                if mine:
                    items = json.loads(clone_bodies(mine, start + timedelta(seconds=len(bodies)), 1)[0])["readings"]
                    first = [json.dumps({"readings": items[i : i + 100]}).encode() for i in range(0, len(items), 100)]
                if args.profile:
                    in_process(fed, token, bodies[:2])  # (warm-up)
                    profile_in_process(token, bodies[2:], top=args.top)
                    if first:
                        profile_in_process(token, first, top=args.top)
                    return results
                copy_rate = max(pg_copy_baseline(url, bodies), pg_copy_baseline(url, bodies))
                rate = through_gunicorn(env, token, bodies, args.threads, root)
                load = os.getloadavg()[0]
                print(f"--- round {round_ + 1}: {label}; {len(bodies)} batches of {BATCH}")
                print(f"baseline, COPY:          {copy_rate:>10,.0f} rows/s  (psycopg 3 COPY into sensor_readings)")
                print(
                    f"HTTP gunicorn -w 2, {args.threads} threads: {rate:>10,.0f} readings/s  = "
                    f"{rate / copy_rate:.3f} × COPY (load average {load:.1f})",
                    flush=True,
                )
                first_rate = float("nan")
                if first:
                    first_rate = through_gunicorn(env, token, first, 1, root)
                    print(
                        f"first readings ({len(mine)} boxes, 100 a request, 1 thread): {first_rate:>8,.0f} readings/s "
                        f"(load average {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )
                results.setdefault(label, []).append((rate, copy_rate, first_rate, load))
        return results
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _operator_token(env: dict) -> str:
    """A bearer token of the data set's operator login (app.demo.generate.LOGINS)."""
    from app import create_app
    from app.accounts.models import User
    from app.accounts.services import issue_user_token
    from app.extensions import db

    app = create_app()
    with app.app_context():
        user = db.session.query(User).filter_by(username="bench").one()
        token, _ = issue_user_token(db.session, user, ttl_hours=2)
        db.session.commit()
        db.engine.dispose()
    return token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--boxes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--postgresql", action="store_true", help="PostgreSQL, COPY baseline (issue 12)")
    parser.add_argument("--profile", action="store_true", help="with --postgresql: cProfile in-process ingest only")
    parser.add_argument("--top", type=int, default=45, help="with --profile: functions listed")
    parser.add_argument("--compare", metavar="DIR", help="with --clone: also the code of DIR (the baseline)")
    parser.add_argument("--rounds", type=int, default=2, help="with --compare: runs of each")
    parser.add_argument("--clone", metavar="DATABASE", help="PostgreSQL: on a clone of a generated data set")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.clone:
        if args.readings == 100_000:
            args.readings = 60_000
        if args.compare:
            main_compare(args)
        else:
            main_clone(args)
        return
    if args.postgresql:
        if args.boxes == 8:
            args.boxes = 1000
        main_postgresql(args)
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    db_path = tmp / "bench.sqlite3"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db_path}",
        "INSTANCE_PATH": str(tmp / "instance"),
        "APP_ENV": "development",
    }
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "INSTANCE_PATH", "APP_ENV")})
    codes, token = setup(db_path, args.boxes)
    n = args.readings
    print(f"SQLite {sqlite3.sqlite_version} in {tmp}; {args.boxes} boxes; {n} readings per run; batches of {BATCH}")
    # Every run writes new readings (further back in time), so nothing is a duplicate.
    span = timedelta(seconds=10 * (n // args.boxes + 1))
    start = datetime.now(UTC) - 3 * span - timedelta(hours=1)
    bodies = make_bodies(codes, n, start)
    batches = baseline_rows(db_path, bodies)
    same = same_schema_baseline(tmp / "same.sqlite3", db_path, batches)
    plain = plain_baseline(tmp / "plain.sqlite3", batches)
    rate = in_process(codes, token, bodies)
    same = max(same, same_schema_baseline(tmp / "same.sqlite3", db_path, batches))
    plain = max(plain, plain_baseline(tmp / "plain.sqlite3", batches))
    print(
        f"baseline, same schema: {same:>10,.0f} rows/s  (sqlite3.executemany into the app's sensor_readings DDL, "
        f"primary key (box_id, ts); WAL, synchronous=NORMAL; one commit per {BATCH} rows)"
    )
    print(
        f"baseline, plain table: {plain:>10,.0f} rows/s  (sqlite3.executemany, no key or index; one commit for all rows)"
    )
    print(
        f"HTTP in-process (test client):  {rate:>10,.0f} readings/s  = {rate / same:.2f} × same-schema baseline "
        f"(target ≥ 0.30), {rate / plain:.2f} × plain-table baseline"
    )
    rate = through_gunicorn(env, token, make_bodies(codes, n, start + span), args.threads)
    print(
        f"HTTP gunicorn -w 2, {args.threads} threads: {rate:>10,.0f} readings/s  = {rate / same:.2f} × same-schema "
        f"baseline (target ≥ 5,000 readings/s)"
    )


if __name__ == "__main__":
    main()
