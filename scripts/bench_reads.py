"""Read benchmark for RANDOM boxes: the scan page ``/c/{code}`` and ``GET /api/v1/boxes/{code}``
against ``/healthz`` on the same server (gunicorn, 2 workers, PostgreSQL).

    .venv/bin/python scripts/bench_reads.py [--boxes 10000] [--seconds 10] [--rounds 3] [--keep NAME]

Makes a scratch PostgreSQL database (``BENCH_PG_URL``, default the local server), migrates it,
and generates the boxes through the product's services (``register_box``, ``record_fill``: each
box registered and filled at a random moment of the last 30 days, so the colours spread over
green, yellow and red), 100 enterprises over the Taizhou counties. Then wrk (``-t2 -c16``) asks
for a random box on every request (a Lua script picks one of all the codes, each wrk thread with
its own seed), so the per-process read cache is little help: what is measured is the stored
evaluation read (app/boxes/lean.py). The scan page is asked by the signed URL a label's QR code
opens (``/c/{code}?v=…&s=…``), the API with a signed-in person's bearer token. The three are
measured in interleaved rounds (``--rounds``) and each ratio is the median of the rounds' ratios,
so that the load of a shared machine changing during the run does not decide it; the load
average is printed before and after. ``--keep NAME`` keeps the database and reuses it on the next
run (no regeneration). Prints requests/s, the ratio to /healthz and p99 for each; targets: ratio
≥ 0.6, p99 < 50 ms. Never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
sys.path.insert(0, str(ROOT))

from scripts.bench_http import free_port, wait_up  # noqa: E402

COUNTIES = ["331002", "331003", "331004", "331022", "331023", "331024", "331081", "331082", "331083"]


def generate(n_boxes: int) -> list[str]:
    """The boxes, through the services, one commit per 500."""
    from app import create_app
    from app.accounts.models import User
    from app.accounts.services import Principal, create_organization
    from app.boxes.services import record_fill, register_box
    from app.extensions import db

    app = create_app()
    rng = random.Random(12)
    codes: list[str] = []
    now = datetime.now(UTC)
    with app.app_context():
        op = db.session.query(User).filter_by(username="bench").one()
        actor = Principal(user=op)
        enterprises = [
            create_organization(
                db.session,
                actor,
                {
                    "name": f"台州基准测试企业{i:03d}有限公司",
                    "roles": ["generator"],
                    "county_code": COUNTIES[i % len(COUNTIES)],
                },
            ).id
            for i in range(100)
        ]
        db.session.commit()
        started = time.perf_counter()
        for i in range(n_boxes):
            registered = now - timedelta(days=30, hours=rng.random() * 24)
            box = register_box(
                db.session,
                actor,
                {
                    "enterprise_id": enterprises[i % len(enterprises)],
                    "facility_code": f"TA{i // len(enterprises):03d}",
                    "outlet_code": "DA001",
                    "carbon_type": "granular",
                    "design_fill_kg": 2000.0,
                    "design_airflow_m3_h": 15000.0,
                    "design_removed_mg_m3": 80.0,
                    "hours_per_day": 16.0,
                    "emission_limit_mg_m3": 60.0,
                },
                now=registered,
            )
            filled_at = now - timedelta(days=rng.random() * 14)
            record_fill(db.session, actor, box, {"mass_kg": 2000.0, "iodine_mg_g": 900.0, "filled_at": filled_at})
            codes.append(box.code)
            if i % 500 == 499:
                db.session.commit()
                print(f"  {i + 1} boxes, {(i + 1) / (time.perf_counter() - started):.0f} boxes/s", flush=True)
        db.session.commit()
        db.engine.dispose()
    return codes


# Each wrk thread its own random sequence: with one seed for all (os.time()), the threads asked
# for the same boxes at the same moment, and the second request of a box found it cached.
LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
local counter = 1
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  math.randomseed(os.time() * 1000 + id * 7919)
end
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


def wrk(url: str, headers: dict[str, str], seconds: int, paths_file: Path | None, tmp: Path) -> tuple[float, str, str]:
    """Requests/s, p50 and p99 of one wrk run."""
    args = ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    if paths_file is not None:
        script = tmp / f"{paths_file.stem}.lua"
        script.write_text(LUA % paths_file)
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    non2xx = [line for line in out.splitlines() if "Non-2xx" in line]
    if non2xx:
        print(f"  {url}: {non2xx[0].strip()}")
    rate = float(next(line for line in out.splitlines() if line.startswith("Requests/sec")).split()[1])

    def pct(p: str) -> str:
        m = re.search(rf"^\s+{p}%\s+(\S+)", out, re.M)
        return m.group(1) if m else "?"

    return rate, pct("50"), pct("99")


def label_path(code: str, version: int, secret: str) -> str:
    from app.labels.signing import label_url

    return label_url("http://x", code, version, secret)[len("http://x") :]


def _secret(env: dict[str, str], tmp: Path) -> str:
    """The server's SECRET_KEY (development: the instance folder's key file)."""
    from app.config import load_config

    return load_config(env["INSTANCE_PATH"])["SECRET_KEY"]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _millis(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    if not m:
        return float("inf")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def _worst(runs: list[tuple[float, str, str]]) -> str:
    return max((r[2] for r in runs), key=_millis)


def _report(label: str, rounds: dict[str, list[tuple[float, str, str]]], n_rounds: int) -> None:
    print(f"{label}:")
    for i in range(n_rounds):
        h, sc, ap = rounds["health"][i], rounds["scan"][i], rounds["api"][i]
        print(
            f"  round {i + 1}: /healthz {h[0]:6.0f} req/s p99 {h[2]:>8} | scan {sc[0]:6.0f} req/s "
            f"ratio {sc[0] / h[0]:.2f} p99 {sc[2]:>8} | API {ap[0]:6.0f} req/s ratio {ap[0] / h[0]:.2f} p99 {ap[2]:>8}"
        )
    health = statistics.median(r[0] for r in rounds["health"])
    scan_ratio = statistics.median(s[0] / h[0] for s, h in zip(rounds["scan"], rounds["health"], strict=True))
    api_ratio = statistics.median(a[0] / h[0] for a, h in zip(rounds["api"], rounds["health"], strict=True))
    print(f"  /healthz                         {health:7.0f} req/s (median of {n_rounds} rounds)")
    print(
        f"  /c/{{code}}?v&s scan page, random  {statistics.median(r[0] for r in rounds['scan']):7.0f} req/s  "
        f"ratio {scan_ratio:.2f} (median of the rounds' ratios)  p99 {_worst(rounds['scan'])} (worst round)  "
        "(target ≥ 0.60, p99 < 50 ms)"
    )
    print(
        f"  GET /api/v1/boxes/{{code}}, random {statistics.median(r[0] for r in rounds['api']):7.0f} req/s  "
        f"ratio {api_ratio:.2f} (median of the rounds' ratios)  p99 {_worst(rounds['api'])} (worst round)  "
        "(target ≥ 0.60, p99 < 50 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10, help="seconds per URL and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of /healthz, scan page, API (interleaved)")
    parser.add_argument(
        "--keep",
        metavar="NAME",
        help="keep the scratch database under this name and reuse it on the next run (no regeneration)",
    )
    parser.add_argument(
        "--baseline-tree",
        metavar="DIR",
        help="also serve the app from this source tree (e.g. the main branch's checkout) and measure both in the same rounds",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (apt-get install wrk)")
    import sqlalchemy as sa

    admin_url = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    name = args.keep or f"bench_reads_{os.getpid()}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        reuse = bool(args.keep and exists)
        if not reuse:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    tmp = Path(tempfile.mkdtemp(prefix="tanxiang-bench-reads-"))
    port = free_port()  # PUBLIC_BASE_URL's (the servers' own ports are chosen below)
    env = {
        **os.environ,
        "APP_ENV": "development",
        "INSTANCE_PATH": str(tmp),
        "FLASK_APP": "wsgi",
        "DATABASE_URL": url,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "PASSWORD": "bench-password-1",
        # This tree's code, whatever the virtualenv's editable install points at (a git worktree).
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    os.environ.update({k: env[k] for k in ("APP_ENV", "INSTANCE_PATH", "DATABASE_URL", "PUBLIC_BASE_URL")})
    servers: list[subprocess.Popen] = []
    try:
        flask = str(VENV_BIN / "flask")
        subprocess.run([flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
        if reuse:
            with sa.create_engine(url).connect() as conn:
                codes = list(conn.execute(sa.text("SELECT code FROM boxes ORDER BY id")).scalars())
                versions = dict(conn.execute(sa.text("SELECT code, label_version FROM boxes")).all())
            print(f"reusing database {name}: {len(codes)} boxes")
        else:
            subprocess.run([flask, "create-superuser", "bench"], cwd=ROOT, env=env, check=True, capture_output=True)
            started = time.perf_counter()
            codes = generate(args.boxes)
            versions = dict.fromkeys(codes, 1)
            with sa.create_engine(url).connect() as conn:
                versions.update(conn.execute(sa.text("SELECT code, label_version FROM boxes")).all())
            print(f"generated {len(codes)} boxes in {time.perf_counter() - started:.0f} s (register_box + record_fill)")
        # This tree's server and, with --baseline-tree, the same server from another tree (the
        # code before a change), on the same database and instance folder (the same SECRET_KEY,
        # so the same signed label URLs): both measured in the same interleaved rounds.
        secret = _secret(env, tmp)  # made before the servers start, so they share it
        trees = {"this": ROOT}
        if args.baseline_tree:
            trees = {"baseline": Path(args.baseline_tree).resolve(), **trees}
        bases: dict[str, str] = {}
        for label, tree in trees.items():
            port = free_port()
            tree_env = {
                **env,
                "PYTHONPATH": os.pathsep.join(p for p in (str(tree), os.environ.get("PYTHONPATH", "")) if p),
            }
            servers.append(
                subprocess.Popen(
                    [
                        str(VENV_BIN / "gunicorn"),
                        "-w",
                        "2",
                        "-b",
                        f"127.0.0.1:{port}",
                        "--log-level",
                        "warning",
                        "wsgi:app",
                    ],
                    cwd=tree,
                    env=tree_env,
                    start_new_session=True,
                )
            )
            bases[label] = f"http://127.0.0.1:{port}"
        for base in bases.values():
            wait_up(base + "/healthz")
        first = next(iter(bases.values()))
        req = urllib.request.Request(
            first + "/api/v1/auth/token",
            method="POST",
            data=json.dumps({"username": "bench", "password": "bench-password-1"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        token = json.load(urllib.request.urlopen(req))["token"]
        auth = {"Authorization": f"Bearer {token}"}
        scan_paths, api_paths = tmp / "scan.txt", tmp / "api.txt"
        # What a label's QR code opens: the signed URL (app.labels.signing), so the scan
        # measured checks the label's signature as every real scan does.
        scan_paths.write_text("".join(f"{label_path(c, versions[c], secret)}\n" for c in codes))
        api_paths.write_text("".join(f"/api/v1/boxes/{c}\n" for c in codes))
        for base in bases.values():
            for _ in range(4):  # each worker accepts the token once (app.common.auth's cache)
                for path, headers in (("/healthz", {}), (f"/c/{codes[0]}", {}), (f"/api/v1/boxes/{codes[0]}", auth)):
                    urllib.request.urlopen(urllib.request.Request(base + path, headers=headers)).read()
        colours: dict[str, int] = {}
        for c in random.Random(3).sample(codes, min(200, len(codes))):
            body = json.load(urllib.request.urlopen(urllib.request.Request(f"{first}/api/v1/boxes/{c}", headers=auth)))
            colours[body["colour"]] = colours.get(body["colour"], 0) + 1
        print(
            f"wrk -t2 -c16, {args.seconds} s per URL, gunicorn 2 workers, PostgreSQL, {len(codes)} boxes, "
            f"a random box per request; colours of 200 sampled: {colours}; servers: "
            + ", ".join(f"{label} ({tree})" for label, tree in trees.items())
        )
        print(f"load average before: {_load()}")
        rounds = {label: {"health": [], "scan": [], "api": []} for label in bases}
        for _ in range(args.rounds):  # interleaved: a change of the machine's load hits all
            # Each URL of the trees back to back: the two trees' figures are measured in about
            # the same conditions (this machine's load changes within seconds).
            for label, base in bases.items():
                rounds[label]["health"].append(wrk(base + "/healthz", {}, args.seconds, None, tmp))
            for label, base in bases.items():
                rounds[label]["scan"].append(wrk(base + "/", {}, args.seconds, scan_paths, tmp))
            for label, base in bases.items():
                rounds[label]["api"].append(wrk(base + "/", auth, args.seconds, api_paths, tmp))
        print(f"load average after:  {_load()}")
        for label, measured in rounds.items():
            _report(label, measured, args.rounds)
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    sys.exit(main())
