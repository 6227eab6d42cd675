"""Architecture guarantees: no process-wide mutable state (the app's wiring), one transaction
boundary (app.common.tx), and no ORM object outliving its request (the token cache)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from tests import factories

ROOT = Path(__file__).resolve().parents[2]
FAST_HASH = "pbkdf2:sha256:1000"
SHIPPED_RULES = ROOT / "app" / "data" / "colour_rules.yaml"


def _own_app(tmp_path, monkeypatch, name: str, db_file: Path, **config):
    from app import create_app

    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / f"instance-{name}"))
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": f"{name}-" + uuid.uuid4().hex,
            "WTF_CSRF_ENABLED": False,
            "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(db_file),
            "PASSWORD_HASH_METHOD": FAST_HASH,
            **config,
        }
    )


def _strict_rules(folder: Path) -> Path:
    data = yaml.safe_load(SHIPPED_RULES.read_text(encoding="utf-8"))
    for rule in data["rules"]:
        if rule["code"] == "saturation_high":
            rule["params"]["threshold"] = 0.01  # a stricter regulator: 1% is already "high"
    data["version"] = "strict-" + folder.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "colour_rules.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return folder


@contextmanager
def _disposed(*apps):
    from app.extensions import db

    try:
        yield
    finally:
        for application in apps:
            with application.app_context():
                db.session.remove()
                db.engine.dispose()


# ---------------------------------------------------------------- 1. no process-wide mutable state


def test_two_apps_in_one_process_each_evaluate_by_their_own_rules(tmp_path, monkeypatch):
    from app.accounts.reference import ensure_counties
    from app.boxes import services as box_services
    from app.extensions import db

    db_file = tmp_path / "shared.sqlite3"
    strict = _own_app(tmp_path, monkeypatch, "strict", db_file, RULES_DIR=str(_strict_rules(tmp_path / "rules")))
    shipped = _own_app(tmp_path, monkeypatch, "shipped", db_file)  # created last: it used to win for both
    with _disposed(strict, shipped):
        now = datetime.now(UTC).replace(microsecond=0)
        with strict.app_context():
            db.create_all()
            ensure_counties(db.session)
            world = factories.World.build()
            box = factories.box(world.enterprise, world.service, now=now - timedelta(days=2))
            box_services.record_fill(
                db.session,
                factories.op_principal(),
                box,
                {"mass_kg": 2000.0, "iodine_mg_g": 900.0, "filled_at": now - timedelta(hours=12)},
                now=now,
            )
            db.session.commit()
            code, box_id = box.code, box.id

        def evaluated(application):
            with application.app_context():
                found = db.session.get(box_services.Box, box_id)
                return box_services.evaluate_boxes(db.session, [found], now)[box_id].colour

        assert evaluated(strict) == "yellow"
        assert evaluated(shipped) == "green"
        assert evaluated(strict) == "yellow"  # and again, in either order

        # Through HTTP too (and the read cache, on one database, keeps the two apart).
        def over_http(application):
            api = factories.ApiClient(application.test_client())
            body = api.get(f"/api/v1/boxes/{code}", as_="ent").get_json()
            return body["colour"], body["rules_version"]

        assert over_http(strict) == ("yellow", "strict-rules")
        shipped_colour, shipped_version = over_http(shipped)
        assert shipped_colour == "green" and shipped_version != "strict-rules"
        assert over_http(strict) == ("yellow", "strict-rules")


def test_a_fill_recorded_through_box_services_alone_writes_its_ledger_record(tmp_path):
    """A script importing only app.boxes.services (no app, no ledger import) still gets the
    ledger's fill hook: the wiring is built explicitly, never by an import side effect."""
    script = textwrap.dedent(f"""
        import sys
        from datetime import datetime, timedelta, timezone

        import sqlalchemy as sa
        from sqlalchemy.orm import Session

        from app.boxes import services as box_services
        from app import import_models
        from app.extensions import Base

        assert "app.ledger.services" not in sys.modules, "the test needs a process without the ledger"
        import_models()
        from app.accounts.models import User
        from app.accounts.reference import ensure_counties
        from app.accounts.services import Principal, create_organization
        from app.accounts.uscc import make_uscc
        from app.ledger.models import LedgerRecord

        engine = sa.create_engine("sqlite:///{tmp_path / "script.sqlite3"}")
        Base.metadata.create_all(engine)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        with Session(engine) as session:
            ensure_counties(session)
            op = User(username="op", display_name="op", is_operator=True, role="admin", password_hash="x")
            session.add(op)
            session.flush()
            actor = Principal(user=op)
            enterprise = create_organization(session, actor, {{"name": "天台橡胶制品有限公司", "roles": ["generator"],
                                             "county_code": "331023", "uscc": make_uscc("91331023MA0000001")}})
            box = box_services.register_box(session, actor, {{
                "enterprise_id": enterprise.id, "facility_code": "TA001", "outlet_code": "DA001",
                "carbon_type": "granular", "design_fill_kg": 2000.0, "design_airflow_m3_h": 15000.0,
                "design_removed_mg_m3": 80.0, "hours_per_day": 16.0, "emission_limit_mg_m3": 60.0}}, now=now)
            box_services.record_fill(session, actor, box, {{"mass_kg": 2000.0, "iodine_mg_g": 900.0,
                                     "filled_at": now - timedelta(days=30)}}, now=now)
            box_services.record_fill(session, actor, box, {{"mass_kg": 2000.0, "iodine_mg_g": 900.0,
                                     "removed_waste_kg": 2150.0, "filled_at": now - timedelta(days=1)}}, now=now)
            session.commit()
            rows = session.scalars(sa.select(LedgerRecord).where(LedgerRecord.box_id == box.id,
                                                                 LedgerRecord.stage == "generation")).all()
            print("LEDGER", len(rows), sum(r.quantity_kg for r in rows))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = [x for x in done.stdout.splitlines() if x.startswith("LEDGER")][-1]
    _, count, total = line.split()
    assert int(count) == 1 and float(total) == pytest.approx(2150.0)


def test_password_hashing_is_app_configuration(app, session):
    from app.accounts.models import User
    from app.accounts.services import set_password
    from app.common.wiring import wiring_of

    assert wiring_of(session).password_hash_method == FAST_HASH == app.config["PASSWORD_HASH_METHOD"]
    user = User(username="hash-probe", display_name="x", password_hash="")
    set_password(session, user, "a-password-1")
    assert user.password_hash.startswith("pbkdf2:sha256:1000$")


def test_no_module_level_hook_or_provider_registries_remain():
    from app.boxes import colour, services

    for module, names in (
        (services, ("FILL_HOOKS", "FILL_VALIDATORS", "RULES_DIR_OVERRIDE")),
        (colour, ("FACT_PROVIDERS",)),
    ):
        assert not [n for n in names if hasattr(module, n)]
    import app.accounts.services as accounts

    assert not hasattr(accounts, "PASSWORD_HASH_METHOD")


# ---------------------------------------------------------------- 2. one transaction boundary


class _Commits:
    def __init__(self):
        self.count = 0

    def __call__(self, _session):
        self.count += 1


@contextmanager
def _counting_commits():
    from app.common.wiring import WiredSession

    counter = _Commits()
    sa.event.listen(WiredSession, "after_commit", counter)
    try:
        yield counter
    finally:
        sa.event.remove(WiredSession, "after_commit", counter)


def test_reads_commit_nothing(app, world, api):
    factories.box(world.enterprise, world.service)
    from app.extensions import db

    db.session.commit()
    api.token("ent")
    with _counting_commits() as commits:
        for url in (
            "/api/v1/stock",
            "/api/v1/ledger",
            "/api/v1/manifests",
            "/api/v1/organizations",
            "/api/v1/users",
            "/api/v1/regeneration-batches",
        ):
            r = api.get(url, as_="ent")
            assert r.status_code == 200, (url, r.get_json())
    assert commits.count == 0


def test_a_refused_write_leaves_nothing_and_a_good_one_commits_once(tmp_path, monkeypatch):
    from app.accounts.models import Park, User
    from app.accounts.reference import ensure_counties
    from app.accounts.services import create_park
    from app.common.errors import Conflict
    from app.extensions import db

    application = _own_app(tmp_path, monkeypatch, "tx", tmp_path / "tx.sqlite3")

    @application.post("/_probe/park/<int:fail>")
    def _probe_park(fail):
        create_park(db.session, factories.op_principal(), {"name": f"园区{fail}", "county_code": "331023"})
        db.session.flush()  # written to the transaction...
        if fail:
            raise Conflict("refused after the flush")  # ...and refused: nothing may stay
        return {"ok": True}, 201

    @application.post("/_probe/duplicate-user")
    def _probe_duplicate():
        # Two users with one username: only the commit finds out (the unique index).
        db.session.add_all(
            [
                User(username="twin", display_name="a", password_hash="x"),
                User(username="twin", display_name="b", password_hash="x"),
            ]
        )
        return {"ok": True}, 201

    with _disposed(application):
        with application.app_context():
            db.create_all()
            ensure_counties(db.session)
            factories.operator()
            db.session.commit()
        client = application.test_client()
        with _counting_commits() as commits:
            refused = client.post("/_probe/park/1")
            assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
            assert commits.count == 0
            good = client.post("/_probe/park/0")
            assert good.status_code == 201 and commits.count == 1
            conflict = client.post("/_probe/duplicate-user")
        assert conflict.status_code == 409, conflict.get_data(as_text=True)
        assert conflict.mimetype == "application/problem+json"
        assert conflict.get_json()["status"] == 409 and "Traceback" not in conflict.get_data(as_text=True)
        with application.app_context():
            assert [p.name for p in db.session.scalars(sa.select(Park))] == ["园区0"]
            assert db.session.scalar(sa.select(sa.func.count()).select_from(User).where(User.username == "twin")) == 0


def test_no_view_commits_by_itself():
    offenders = []
    for path in (ROOT / "app").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        is_view = rel.endswith("views.py") or rel.startswith("app/web/") or rel.endswith("cli.py")
        if is_view and ".commit()" in path.read_text(encoding="utf-8"):
            offenders.append(rel)
    assert offenders == []


# ---------------------------------------------------------------- 3. no ORM object outlives its request

_BAD_MANIFEST = {
    "carrier_id": 987654,
    "receiver_id": 987653,
    "lines": [{"waste_code": "900-039-49", "quantity_kg": 1.0}],
}


def test_a_token_keeps_working_after_its_first_request_was_refused(app):
    """No app context is held across the requests here: each has its own session, as in
    production (a shared test session would hide a detached cached object)."""
    from app.extensions import db

    with app.app_context():
        factories.World.build()
    client = app.test_client()
    r = client.post("/api/v1/auth/token", json={"username": "ent", "password": factories.PASSWORD})
    assert r.status_code == 201
    headers = {"Authorization": "Bearer " + r.get_json()["token"]}
    refused = client.post("/api/v1/manifests", json=_BAD_MANIFEST, headers=headers)
    assert refused.status_code == 422, refused.get_json()
    for _ in range(3):
        r = client.get("/api/v1/stock", headers=headers)
        assert r.status_code == 200, r.get_data(as_text=True)[:500]
    r = client.get("/api/v1/boxes", headers=headers)
    assert r.status_code == 200
    with app.app_context():
        db.session.remove()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(
    method: str, url: str, body: dict | None = None, token: str | None = None, timeout: float = 10
) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, {"raw": raw[:300].decode(errors="replace")}


def test_several_workers_keep_answering_after_a_refused_request(tmp_path, monkeypatch):
    from app.accounts.reference import ensure_counties
    from app.extensions import db

    db_file = tmp_path / "workers.sqlite3"
    setup = _own_app(tmp_path, monkeypatch, "setup", db_file)
    with _disposed(setup), setup.app_context():
        db.create_all()
        ensure_counties(db.session)
        factories.World.build()
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": "sqlite:///" + str(db_file),
        "SECRET_KEY": "workers-" + uuid.uuid4().hex,
        "INSTANCE_PATH": str(tmp_path / "instance-workers"),
        "PASSWORD_HASH_METHOD": FAST_HASH,
        "APP_ENV": "production",
    }
    server = subprocess.Popen(
        # --preload: the app is built once, before the port opens; the two workers fork from it.
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "-w",
            "2",
            "--preload",
            "-b",
            f"127.0.0.1:{port}",
            "--timeout",
            "30",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30  # building the app takes seconds on a busy machine
        while True:
            try:
                if _http("GET", base + "/healthz", timeout=2)[0] == 200:
                    break
            except OSError:  # refused (not listening yet) or timed out
                pass
            assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        status, body = _http("POST", base + "/api/v1/auth/token", {"username": "ent", "password": factories.PASSWORD})
        assert status == 201, body
        token = body["token"]
        statuses = []
        for _ in range(4):  # each worker gets a refused request, then reads
            statuses.append(_http("POST", base + "/api/v1/manifests", _BAD_MANIFEST, token)[0])
            statuses.extend(_http("GET", base + "/api/v1/stock", token=token)[0] for _ in range(3))
        assert statuses == [422, 200, 200, 200] * 4
    except Exception as exc:
        server.terminate()
        _, err = server.communicate(timeout=10)
        raise AssertionError(f"{exc!r}; gunicorn said:\n{err.decode(errors='replace')[-4000:]}") from exc
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
