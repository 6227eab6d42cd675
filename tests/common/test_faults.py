"""Faults through the real server: gunicorn with 2 workers, as ``scripts/run`` serves the app.

* a worker SIGKILLed in the middle of a batch of 5,000 readings: the batch is stored wholly or not
  at all, the master starts a new worker and the service keeps answering;
* the database gone (dropped WITH FORCE: every connection cut) and back: 503 problem+json with
  Retry-After meanwhile, then the same workers answer again without a restart.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import factories
from tests.support import BACKENDS, _pg_admin, drop_pg_database, pg_scratch_database

ROOT = Path(__file__).resolve().parents[2]
FAST_HASH = "pbkdf2:sha256:1000"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, body: dict | None = None, token: str | None = None, timeout: float = 60):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _workers(master: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{master}\n" in status:
                pids.append(int(entry))
    return pids


@contextmanager
def gunicorn(url: str, tmp_path: Path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": secrets.token_hex(32),
        "APP_ENV": "production",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "PUBLIC_BASE_URL": base,
        "PASSWORD_HASH_METHOD": FAST_HASH,
    }
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - kept open for the server's lifetime, closed at its stop
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--timeout",
            "120",
            "--bind",
            f"127.0.0.1:{port}",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        _wait_ready(base, proc, tmp_path)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_ready(base: str, proc, tmp_path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()[-3000:]
        try:
            if _request(base + "/healthz", timeout=2)[0] == 200 and len(_workers(proc.pid)) >= 2:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("gunicorn did not answer: " + (tmp_path / "gunicorn.log").read_text()[-3000:])


def _seed(url: str, tmp_path: Path) -> tuple[str, int, str]:
    """Tables, an enterprise with a sensor box filled 10 days ago, a device token: (code, box id, token)."""
    from app import create_app
    from app.accounts.services import issue_device_token
    from app.boxes.services import record_fill
    from app.extensions import db

    os.environ["INSTANCE_PATH"] = str(tmp_path / "seed-instance")
    application = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": secrets.token_hex(32),
            "SQLALCHEMY_DATABASE_URI": url,
            "PASSWORD_HASH_METHOD": FAST_HASH,
        }
    )
    with application.app_context():
        db.create_all()
        from app.accounts.reference import ensure_counties

        ensure_counties(db.session)
        world = factories.World.build()
        box = factories.box(world.enterprise, has_sensors=True, pressure_drop_min_pa=300.0, pressure_drop_max_pa=1200.0)
        record_fill(
            db.session,
            factories.op_principal(),
            box,
            {"mass_kg": 2000.0, "iodine_mg_g": 950.0, "filled_at": datetime.now(UTC) - timedelta(days=12)},
        )
        token, _row = issue_device_token(db.session, factories.op_principal(), world.enterprise.id, "gw")
        db.session.commit()
        code, box_id = box.code, box.id
        db.session.remove()
        db.engine.dispose()
    return code, box_id, token


def _batch(code: str, start: datetime, n: int = 5000) -> dict:
    base = dict(
        inlet_mg_m3=100.0,
        outlet_mg_m3=20.0,
        airflow_m3_h=5000.0,
        pressure_drop_pa=800.0,
        inlet_temp_c=30.0,
        bed_temp_c=30.0,
        rh_pct=50.0,
        running=True,
    )
    return {
        "readings": [
            {"box_code": code, "ts": (start + timedelta(seconds=10 * i)).isoformat(), **base} for i in range(n)
        ]
    }


def _stored(url: str, box_id: int, start: datetime, n: int = 5000) -> int:
    from app.telemetry.models import SensorReading

    table = SensorReading.__table__
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count())
                .select_from(table)
                .where(
                    table.c.box_id == box_id,
                    table.c.ts >= start,
                    table.c.ts <= start + timedelta(seconds=10 * (n - 1)),
                )
            ).scalar_one()
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path, worker):
    if request.param == "postgresql":
        url = pg_scratch_database("faults", worker)
        yield url
        drop_pg_database(url)
        return
    yield "sqlite:///" + str(tmp_path / "faults.sqlite3")


def _send(base: str, code: str, start: datetime, token: str, outcome: dict) -> None:
    began = time.monotonic()
    try:
        outcome["status"] = _request(base + "/api/v1/readings", _batch(code, start), token)[0]
    except (OSError, http.client.HTTPException) as exc:  # the worker died under the request
        outcome["error"] = exc
    outcome["seconds"] = time.monotonic() - began


# Each batch spans 5,000 × 10 s ≈ 14 h; batches start 15 h apart, all after the fill 12 days ago.
SPACING = timedelta(hours=15)
KILL_POINTS = (0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.1, 0.9, 0.5)


def test_sigkill_of_a_worker_mid_batch_stores_all_or_nothing(database, tmp_path):
    code, box_id, token = _seed(database, tmp_path)
    with gunicorn(database, tmp_path) as (base, proc):
        first = datetime.now(UTC).replace(microsecond=0) - timedelta(days=11)
        slots = iter(first + SPACING * i for i in range(len(KILL_POINTS) + 3))
        # How long a whole batch takes on this machine now: the kills aim inside that time, so the
        # test cuts a batch in the middle however fast or loaded the machine is.
        timings = []
        for _ in range(2):
            outcome: dict = {}
            start = next(slots)
            _send(base, code, start, token, outcome)
            assert outcome.get("status") == 200, outcome
            assert _stored(database, box_id, start) == 5000
            timings.append(outcome["seconds"])
        whole = min(timings)
        cut = 0
        for point in KILL_POINTS:
            start = next(slots)
            outcome = {}
            sender = threading.Thread(target=_send, args=(base, code, start, token, outcome))
            sender.start()
            time.sleep(whole * point)
            for pid in _workers(proc.pid):
                os.kill(pid, signal.SIGKILL)
            sender.join(90)
            assert not sender.is_alive()
            stored = _stored(database, box_id, start)
            assert stored in (0, 5000), f"a partial batch was stored: {stored} of 5000"
            if outcome.get("status") == 200:
                assert stored == 5000
            cut += "error" in outcome
            _wait_ready(base, proc, tmp_path)  # the master has started new workers
            if cut >= 2:
                break
        assert cut >= 1, f"no attempt was cut mid-batch in {len(KILL_POINTS)} tries (a batch takes {whole:.2f} s)"
        # The service keeps answering: a new batch goes in whole.
        start = next(slots)
        # A generous timeout: the new workers warm up (imports, first connections) on a loaded machine.
        status, _headers, body = _request(base + "/api/v1/readings", _batch(code, start), token, timeout=240)
        assert status == 200, body[:300]
        assert json.loads(body)["accepted"] == 5000 and _stored(database, box_id, start) == 5000
        assert _request(base + "/healthz")[0] == 200


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="TEST_BACKENDS without postgresql")
def test_database_gone_and_back_through_gunicorn(tmp_path, worker):
    url = pg_scratch_database("restart", worker)
    name = url.rsplit("/", 1)[1]
    try:
        code, _box_id, _token = _seed(url, tmp_path)
        with gunicorn(url, tmp_path) as (base, _proc):
            assert _request(base + "/readyz")[0] == 200
            assert _request(base + f"/c/{code}")[0] == 200
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # stopped: every connection cut
            for _ in range(4):  # both workers, several times each
                for path, body in (
                    ("/readyz", None),
                    (f"/c/{code}", None),
                    ("/api/v1/auth/token", {"username": "op", "password": factories.PASSWORD}),
                ):
                    status, headers, raw = _request(base + path, body)
                    assert status == 503, (path, status, raw[:300])
                    if path.startswith("/api/"):
                        assert headers["Content-Type"].startswith("application/problem+json")
                    if path != "/readyz":
                        assert int(headers["Retry-After"]) > 0
            _pg_admin(f'CREATE DATABASE "{name}"')  # restarted (empty: seeded again)
            code, _box_id, _token = _seed(url, tmp_path)
            deadline = time.monotonic() + 30
            while _request(base + "/readyz")[0] != 200:
                assert time.monotonic() < deadline, "the workers did not reconnect"
                time.sleep(0.5)
            for _ in range(6):  # every worker has reconnected (pre-ping), no restart
                assert _request(base + "/readyz")[0] == 200
                assert _request(base + f"/c/{code}")[0] == 200
                status, _h, raw = _request(
                    base + "/api/v1/auth/token", {"username": "op", "password": factories.PASSWORD}
                )
                assert status == 201, raw[:300]
    finally:
        drop_pg_database(url)
