"""City-scale benchmark (issue 12): generate the data set on PostgreSQL, measure every figure of
the issue's table against its baseline in the same run, write ``docs/benchmarks.md``.

    .venv/bin/python scripts/bench_scale.py --scale 1 [--scale 10] [--seconds 10] [--json out.json]

For each scale: a scratch database ``tanxiang_bench_<scale>_<pid>`` (``BENCH_PG_URL``, default
the local server), ``flask db upgrade``, ``flask demo generate --scale N`` (the product's bulk
paths, :mod:`app.demo.generate`), then gunicorn with 2 workers on it and the figures below. With
two scales the cost curve is the ratio of the larger scale's figure to the smaller's. A figure
whose endpoint or command does not exist yet is reported "not available". Prints, never asserts.
``--render FILE.json`` writes the page again from a ``--json`` file (docs/benchmarks.json holds
the last run's raw figures). ``BENCH_KEEP_DB=1`` keeps the scratch database;
``BENCH_DB_PREFIX`` names it (default ``tanxiang_bench``).

``--template DB --generated-seconds S``: the largest scale is not generated but cloned from an
already generated database (``CREATE DATABASE … TEMPLATE DB``, then ``flask db upgrade``), and
its generation time is the given ``S`` (reported as measured by an earlier run), so the 10×
figures can be measured again without 20 minutes of generation. The data set's present is read
from it (its newest reading + 1 minute) unless ``--generated-now`` gives it.

Which principal reads what: the registry's outgoing view is the consignor's (the data set's
``consignor`` login: the first enterprise), incoming the receiver's (``receiver``), transported the
carrier's (``carrier``), managed the city regulator's (``city``); each is measured against the
same view for one month (``from``/``to``), rows per second and the workers' peak memory.
"""

from __future__ import annotations

import argparse
import http.client
import http.cookiejar
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
sys.path.insert(0, str(ROOT))

from scripts.bench_http import free_port, wait_up  # noqa: E402
from scripts.bench_reads import wrk  # noqa: E402

PASSWORD = "bench-password-1"  # app.demo.generate.PASSWORD
INGEST_BATCHES = 60
INGEST_THREADS = 4  # client threads, one gateway each when the data set has boxes enough
NA = "not available"
FIRST_EMPTY_YEAR = 2011  # no data set has data then (the generator's span is the last two years)


# ---------------------------------------------------------------- plumbing


class Server:
    """gunicorn -w 2 on the scratch database; ``base`` is its URL."""

    def __init__(self, env: dict[str, str], port: int):
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        self.base = f"http://127.0.0.1:{port}"
        wait_up(self.base + "/healthz", timeout=60)

    def workers_peak_rss_mb(self) -> float:
        """The largest peak RSS (VmHWM) of the workers: a process's high-water mark since it started."""
        peaks = []
        for child in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split():
            status = Path(f"/proc/{child}/status").read_text()
            peaks.append(int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024)
        return max(peaks, default=0.0)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=20)


def request(base: str, path: str, token: str | None = None, body: object = None, timeout: float = 600):
    req = urllib.request.Request(
        base + path,
        method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read()


def token_for(base: str, username: str) -> str:
    _, body = request(base, "/api/v1/auth/token", body={"username": username, "password": PASSWORD})
    return json.loads(body)["token"]


def timed(fn, repeat: int = 3) -> float:
    """The median of ``repeat`` timings of ``fn()`` after one warm-up call, in seconds."""
    fn()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def page_opener(base: str, username: str) -> urllib.request.OpenerDirector:
    """A browser-like client signed in through the login form (its hidden token fields re-posted)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(base + "/login").read().decode()
    hidden = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
    form = urllib.parse.urlencode({**hidden, "username": username, "password": PASSWORD}).encode()
    opener.open(urllib.request.Request(base + "/login", data=form, method="POST")).read()
    return opener


# ---------------------------------------------------------------- the figures


def reads(server: Server, token: str, codes: list[str], seconds: int, tmp: Path) -> dict:
    scan_paths, api_paths = tmp / "scan.txt", tmp / "api.txt"
    scan_paths.write_text("".join(f"/c/{c}\n" for c in codes))
    api_paths.write_text("".join(f"/api/v1/boxes/{c}\n" for c in codes))
    auth = {"Authorization": f"Bearer {token}"}
    health, _h50, h99 = wrk(server.base + "/healthz", {}, seconds, None, tmp)
    scan, s50, s99 = wrk(server.base + "/", {}, seconds, scan_paths, tmp)
    api, a50, a99 = wrk(server.base + "/", auth, seconds, api_paths, tmp)
    return {
        "healthz_rps": health,
        "healthz_p99": h99,
        "scan_rps": scan,
        "scan_p50": s50,
        "scan_p99": s99,
        "scan_ratio": scan / health,
        "api_rps": api,
        "api_p50": a50,
        "api_p99": a99,
        "api_ratio": api / health,
    }


def sweep(env: dict[str, str], engine, n_boxes: int) -> dict:
    """Every box due (its next check moved to the past), then ``flask boxes refresh-colours``."""
    import sqlalchemy as sa

    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE boxes SET colour_next_check_at = now() - interval '1 second'"))
    began = time.perf_counter()
    out = subprocess.run(
        [str(VENV_BIN / "flask"), "boxes", "refresh-colours"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - began
    began = time.perf_counter()
    subprocess.run([str(VENV_BIN / "flask"), "--help"], cwd=ROOT, env=env, capture_output=True)
    startup = time.perf_counter() - began
    return {
        "sweep_s": elapsed,
        "sweep_startup_s": startup,
        "sweep_boxes": n_boxes,
        "sweep_output": (out.stdout or out.stderr).strip().splitlines()[-1:],
    }


def statistics_figures(server: Server, city: str, park_id: int, year: int) -> dict:
    city_s = timed(lambda: request(server.base, f"/api/v1/metrics?period={year}", city))
    park_s = timed(lambda: request(server.base, f"/api/v1/parks/{park_id}/metrics?period={year}", city))
    return {"city_year_s": city_s, "park_year_s": park_s, "city_year_ratio": city_s / park_s}


def dashboards(server: Server) -> dict:
    city, county = page_opener(server.base, "city"), page_opener(server.base, "county")
    city_s = timed(lambda: city.open(server.base + "/").read())
    county_s = timed(lambda: county.open(server.base + "/").read())
    return {"city_dashboard_s": city_s, "county_dashboard_s": county_s, "dashboard_ratio": city_s / county_s}


def ingest_bodies(codes: list[str], start: datetime, batches: int, lanes: int = 1) -> list[list[dict]]:
    """Batches of one reading for each of 1,000 distinct boxes, every reading new.

    With ``lanes`` > 1 and enough boxes (1,000 a lane or more), the boxes are dealt to ``lanes``
    disjoint gateways and batch ``k`` is gateway ``k % lanes``'s: 1,000 of its boxes drawn at
    random, a second after its previous batch (readings may not lie ahead of the server's clock,
    nor before the sweep that has just evaluated every box), as a city's gateways send (each its own boxes, in
    time order, so no reading arrives late and two concurrent batches share no box). With fewer
    boxes, every batch carries the same (up to) 1,000 boxes, a second apart."""
    if lanes > 1 and len(codes) >= 1000 * lanes:
        rng = random.Random(12)
        shuffled = codes[:]
        rng.shuffle(shuffled)
        groups = [shuffled[i::lanes] for i in range(lanes)]
        plan = [(rng.sample(groups[k % lanes], 1000), start + timedelta(seconds=k // lanes)) for k in range(batches)]
    else:
        plan = [(codes[:1000], start + timedelta(seconds=b)) for b in range(batches)]
    return [
        [
            {
                "box_code": code,
                "ts": ts.isoformat(),
                "running": True,
                "inlet_mg_m3": 90.0,
                "outlet_mg_m3": 12.0,
                "airflow_m3_h": 15000.0,
                "pressure_drop_pa": 700.0,
                "inlet_temp_c": 30.0,
                "bed_temp_c": 34.0,
                "rh_pct": 55.0,
            }
            for code in chosen
        ]
        for chosen, ts in plan
    ]


def post_batches(
    base: str, token: str, batches: list[list[dict]], threads: int, lanes: bool = False
) -> tuple[float, int, list[str]]:
    """Readings/s of ``batches`` posted by ``threads`` clients. With ``lanes``, client ``i`` sends
    batches ``i``, ``i + threads``, … in order (one gateway each, see :func:`ingest_bodies`);
    otherwise each client takes the next batch left."""
    port = int(base.rsplit(":", 1)[1])
    queue, lock = list(batches), threading.Lock()
    own = [list(batches[i::threads]) for i in range(threads)]
    accepted, failures = [0], []

    def worker(lane: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while True:
            with lock:
                pending = own[lane] if lanes else queue
                if not pending:
                    return
                items = pending.pop(0)
            body = json.dumps({"readings": items})
            conn.request(
                "POST",
                "/api/v1/readings",
                body,
                {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            data = resp.read()
            with lock:
                if resp.status != 200:
                    failures.append(f"HTTP {resp.status}: {data[:200]!r}")
                else:
                    accepted[0] += json.loads(data)["accepted"]

    began = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return accepted[0] / (time.perf_counter() - began), accepted[0], failures


def copy_baseline(engine, batches: list[list[dict]], box_ids: dict[str, int]) -> float:
    """COPY of the same rows into a table made LIKE sensor_readings (keys and indexes included)."""
    import sqlalchemy as sa

    rows = [
        (box_ids[r["box_code"]], r["ts"], r["inlet_mg_m3"], r["outlet_mg_m3"], r["airflow_m3_h"],
         r["pressure_drop_pa"], r["inlet_temp_c"], r["bed_temp_c"], r["rh_pct"], r["running"])
        for batch in batches for r in batch
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS bench_copy"))
        conn.execute(sa.text("CREATE TABLE bench_copy (LIKE sensor_readings INCLUDING ALL)"))
        columns = [c for (c,) in conn.execute(sa.text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'bench_copy' ORDER BY ordinal_position"
        ))]  # fmt: skip
    names = ["box_id", "ts", "inlet_mg_m3", "outlet_mg_m3", "airflow_m3_h", "pressure_drop_pa", "inlet_temp_c",
             "bed_temp_c", "rh_pct", "running"]  # fmt: skip
    names = [n for n in names if n in columns]
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        began = time.perf_counter()
        for start in range(0, len(rows), 1000):  # one COPY per batch, as ingest would do
            with cur.copy(f"COPY bench_copy ({', '.join(names)}) FROM STDIN") as copy:
                for row in rows[start : start + 1000]:
                    copy.write_row(row[: len(names)])
            raw.commit()
        elapsed = time.perf_counter() - began
        cur.execute("DROP TABLE bench_copy")
        raw.commit()
    finally:
        raw.close()
    return len(rows) / elapsed


def ingest_figures(server: Server, engine, token: str, start: datetime) -> dict:
    import sqlalchemy as sa

    with engine.connect() as conn:
        fed = [c for (c,) in conn.execute(sa.text(
            "SELECT code FROM boxes b WHERE has_sensors AND EXISTS (SELECT 1 FROM sensor_readings r WHERE r.box_id = b.id) ORDER BY id"
        ))]  # fmt: skip
        fresh = [c for (c,) in conn.execute(sa.text(
            "SELECT code FROM boxes b WHERE has_sensors AND NOT EXISTS (SELECT 1 FROM sensor_readings r WHERE r.box_id = b.id) ORDER BY id"
        ))]  # fmt: skip
        box_ids = {code: box_id for code, box_id in conn.execute(sa.text("SELECT code, id FROM boxes"))}
    batches = ingest_bodies(fed, start, INGEST_BATCHES, lanes=INGEST_THREADS)
    http_rate, accepted, failures = post_batches(server.base, token, batches, threads=INGEST_THREADS, lanes=True)
    copy_rate = copy_baseline(engine, batches, box_ids)
    first_batches = [[item] for item in ingest_bodies(fresh, start, 1)[0]]  # one box's first reading a request
    first = [first_batches[i : i + 100] for i in range(0, len(first_batches), 100)]
    first_rate, first_n, first_failures = post_batches(
        server.base, token, [[item for one in b for item in one] for b in first], threads=1
    )
    return {
        "ingest_boxes_per_batch": len(batches[0]) if batches else 0,
        "ingest_readings": accepted,
        "ingest_rps": http_rate,
        "copy_rps": copy_rate,
        "ingest_ratio": http_rate / copy_rate,
        "ingest_failures": failures[:3],
        "first_reading_rps": first_rate,
        "first_reading_boxes": first_n,
        "first_reading_failures": first_failures[:3],
    }


def labels() -> dict:
    out = subprocess.run(
        [str(VENV_BIN / "python"), "scripts/bench_labels.py", "--labels", "1000", "--rounds", "3", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return (
        json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"labels_error": out.stderr[-300:]}
    )


#: Registry view → the data set's login that is its party (app.demo.generate.LOGINS).
REGISTRY_LOGINS = {"outgoing": "consignor", "incoming": "receiver", "transported": "carrier", "managed": "city"}


def _export(server: Server, path: str, token: str) -> dict:
    began = time.perf_counter()
    _status, body = request(server.base, path, token)
    return {
        "seconds": time.perf_counter() - began,
        "rows": body.count(b"\n") - 1,
        "worker_peak_rss_mb": server.workers_peak_rss_mb(),
    }


def registry_export(server: Server, tokens: dict[str, str], month: tuple[str, str]) -> dict:
    """Each view as CSV by its party: first one month of it (the baseline), then all of it; the
    workers' peak RSS after each (a high-water mark: flat memory leaves it where the month left it)."""
    results: dict = {}
    for view, login in REGISTRY_LOGINS.items():
        path = f"/api/v1/registry/{view}.csv"
        if login not in tokens:
            results[view] = f"no `{login}` login in this data set"
            continue
        try:
            baseline = _export(server, f"{path}?from={month[0]}&to={month[1]}", tokens[login])
            full = _export(server, path, tokens[login])
        except urllib.error.HTTPError as exc:
            results[view] = NA if exc.code in (404, 405) else f"HTTP {exc.code}"
            continue
        full_rate = full["rows"] / full["seconds"] if full["seconds"] else None
        month_rate = baseline["rows"] / baseline["seconds"] if baseline["seconds"] and baseline["rows"] else None
        results[view] = full | {
            "login": login,
            "month": baseline,
            "rate_ratio": full_rate / month_rate if full_rate and month_rate else None,
        }
    return {"registry": results}


def index_scores(server: Server, city: str, year: int) -> dict:
    """The synergy index scores (all counties: the endpoint has no county filter) for the data's
    year, against the same request for a year without data (the scoring's fixed cost)."""
    empty = FIRST_EMPTY_YEAR
    scores_s = timed(lambda: request(server.base, f"/api/v1/index/scores?period={year}", city))
    empty_s = timed(lambda: request(server.base, f"/api/v1/index/scores?period={empty}", city))
    return {"index_scores_s": scores_s, "index_empty_s": empty_s, "index_empty_year": empty,
            "index_ratio": scores_s / empty_s}  # fmt: skip


def statistics_verify(env: dict[str, str]) -> dict:
    flask = str(VENV_BIN / "flask")
    probe = subprocess.run([flask, "statistics", "verify", "--help"], cwd=ROOT, env=env, capture_output=True)
    if probe.returncode != 0:
        return {"statistics_verify": NA}
    began = time.perf_counter()
    out = subprocess.run([flask, "statistics", "verify"], cwd=ROOT, env=env, capture_output=True, text=True)
    return {
        "statistics_verify": {
            "seconds": time.perf_counter() - began,
            "exit": out.returncode,
            "last_line": (out.stdout or out.stderr).strip().splitlines()[-1:],
        }
    }


# ---------------------------------------------------------------- one scale


def _create_database(admin, name: str, template: str | None) -> None:
    """The scratch database, empty or a copy of ``template`` (refused while anyone is connected
    to the template: tried again for up to ten minutes)."""
    import sqlalchemy as sa

    sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    deadline = time.monotonic() + 600
    while True:
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(sql))
            return
        except sa.exc.OperationalError as exc:
            if template is None or "is being accessed by other users" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(5)


def _data_set_now(engine) -> datetime:
    """A cloned data set's present: its newest reading + 1 minute (the generator's readings end a
    minute before it), else its newest manifest's creation + 7 days."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        newest = conn.execute(sa.text("SELECT max(ts) FROM sensor_readings")).scalar_one()
        if newest is not None:
            return newest + timedelta(minutes=1)
        created = conn.execute(sa.text("SELECT max(created_at) FROM manifests")).scalar_one()
    return (created or datetime.now(UTC)) + timedelta(days=7)


def run_scale(
    scale: float,
    seconds: int,
    admin_url: str,
    template: str | None = None,
    generated_seconds: float | None = None,
    generated_now: datetime | None = None,
) -> dict:
    import sqlalchemy as sa

    name = f"{os.environ.get('BENCH_DB_PREFIX', 'tanxiang_bench')}_{str(scale).replace('.', '_')}_{os.getpid()}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    if template:
        print(f"[{scale:g}×] cloning {template} (CREATE DATABASE … TEMPLATE)", flush=True)
    began = time.perf_counter()
    _create_database(admin, name, template)
    cloned_s = time.perf_counter() - began
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = sa.create_engine(url)
    tmp = Path(tempfile.mkdtemp(prefix="tanxiang-bench-scale-"))
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "development",
        "INSTANCE_PATH": str(tmp),
        "FLASK_APP": "wsgi",
        "DATABASE_URL": url,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    flask = str(VENV_BIN / "flask")
    out: dict = {"scale": scale, "database": name}
    server = None
    try:
        subprocess.run([flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
        if template:
            out["generate_s"] = generated_seconds
            out["generated_by"] = f"an earlier run (cloned from {template} in {cloned_s:.0f} s)"
            generated_now = generated_now or _data_set_now(engine)
            print(f"[{scale:g}×] cloned in {cloned_s:.0f} s; its present {generated_now.isoformat()}", flush=True)
        else:
            # The data set's present two hours ago: the ingest figures write the two hours after it.
            generated_now = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
            began = time.perf_counter()
            gen = subprocess.run(
                [flask, "demo", "generate", "--scale", str(scale), "--now", generated_now.isoformat()],
                cwd=ROOT, env=env, capture_output=True, text=True,
            )  # fmt: skip
            out["generate_s"] = time.perf_counter() - began
            out["generate_load_average"] = os.getloadavg()
            if gen.returncode != 0:
                raise SystemExit(f"generate failed:\n{gen.stderr[-3000:]}")
            out["generate_output"] = [line for line in gen.stdout.splitlines() if "s " in line][-60:]
            print(
                f"[{scale:g}×] generated in {out['generate_s']:.0f} s: {gen.stdout.strip().splitlines()[-1]}",
                flush=True,
            )
        with engine.connect() as conn:
            out["counts"] = {
                t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("boxes", "sensor_readings", "manifests", "ledger_records", "organizations")
            }
            codes = [c for (c,) in conn.execute(sa.text("SELECT code FROM boxes"))]
            park_id = conn.execute(sa.text("SELECT min(id) FROM parks")).scalar_one()
        # The sweep first: it leaves every box evaluated at the present, as the periodic sweep
        # keeps a city's boxes in service (the data set's present is its generation's).
        began = time.perf_counter()
        try:
            out.update(sweep(env, engine, len(codes)))
        except Exception as exc:  # one failing figure must not lose the others
            out["sweep_error"] = f"{type(exc).__name__}: {exc}"[:300]
        print(f"[{scale:g}×] sweep done in {time.perf_counter() - began:.0f} s", flush=True)
        server = Server(env, port)
        tokens = {}
        for login in ("bench", *REGISTRY_LOGINS.values()):
            try:
                tokens[login] = token_for(server.base, login)
            except urllib.error.HTTPError:  # (a data set generated before the login existed)
                print(f"[{scale:g}×] no login {login!r} in this data set", flush=True)
        operator, city = tokens["bench"], tokens["city"]
        data_year = generated_now.year
        month_end = generated_now.date().replace(day=1) - timedelta(days=1)  # the last whole month
        month = (month_end.replace(day=1).isoformat(), month_end.isoformat())
        for path in ("/healthz", f"/c/{codes[0]}"):
            request(server.base, path)
        request(server.base, f"/api/v1/boxes/{codes[0]}", operator)
        steps = (
            ("reads", lambda: reads(server, operator, codes, seconds, tmp)),
            ("statistics", lambda: statistics_figures(server, city, park_id, data_year)),
            ("index", lambda: index_scores(server, city, data_year)),
            ("dashboards", lambda: dashboards(server)),
            # readings from now: every box was evaluated now by the sweep above, as in service
            ("ingest", lambda: ingest_figures(server, engine, operator, datetime.now(UTC).replace(microsecond=0))),
            ("registry", lambda: registry_export(server, tokens, month)),
            ("statistics_verify", lambda: statistics_verify(env)),
        )
        for label, step in steps:
            began = time.perf_counter()
            try:
                out.update(step())
            except Exception as exc:  # one failing figure must not lose the others
                out[f"{label}_error"] = f"{type(exc).__name__}: {exc}"[:300]
            print(f"[{scale:g}×] {label} done in {time.perf_counter() - began:.0f} s", flush=True)
    finally:
        if server is not None:
            server.stop()
        engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.environ.get("BENCH_KEEP_DB"):
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return out


# ---------------------------------------------------------------- the report


def machine(admin_url: str) -> dict:
    import sqlalchemy as sa

    with sa.create_engine(admin_url).connect() as conn:
        pg = conn.execute(sa.text("SHOW server_version")).scalar_one()
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": cpu.group(1).strip() if cpu else platform.processor(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "postgresql": pg,
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
    }


def _fmt(value, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f}{unit}"


def figure_rows(r: dict) -> list[tuple[str, str, str, str, float | None]]:
    """(work, figure, baseline, ratio, the number the cost curve compares) for one scale's results."""
    reg = r.get("registry", {})
    lab = r
    rows = [
        ("scan page `/c/{code}`, random box", f"{_fmt(r.get('scan_rps'), ' req/s', 0)}, p99 {r.get('scan_p99', '–')}",
         f"/healthz {_fmt(r.get('healthz_rps'), ' req/s', 0)}", _fmt(r.get("scan_ratio")), r.get("scan_rps")),
        ("`GET /api/v1/boxes/{code}`, random box", f"{_fmt(r.get('api_rps'), ' req/s', 0)}, p99 {r.get('api_p99', '–')}",
         f"/healthz {_fmt(r.get('healthz_rps'), ' req/s', 0)}", _fmt(r.get("api_ratio")), r.get("api_rps")),
        ("colour sweep, all boxes due (`flask boxes refresh-colours`)",
         f"{_fmt(r.get('sweep_s'), ' s', 1)} for {r.get('sweep_boxes', '–')} boxes",
         f"process start-up {_fmt(r.get('sweep_startup_s'), ' s', 1)}", "–", r.get("sweep_s")),
        ("city statistics for a year (`/api/v1/metrics?period=YYYY`)", _fmt(r.get("city_year_s"), " s", 3),
         f"park: {_fmt(r.get('park_year_s'), ' s', 3)}", _fmt(r.get("city_year_ratio")), r.get("city_year_s")),
        ("city regulator's dashboard `/`", _fmt(r.get("city_dashboard_s"), " s", 3),
         f"county: {_fmt(r.get('county_dashboard_s'), ' s', 3)}", _fmt(r.get("dashboard_ratio")), r.get("city_dashboard_s")),
        (f"HTTP ingest, batches of one reading for each of {r.get('ingest_boxes_per_batch', '–')} boxes (4 client threads)",
         _fmt(r.get("ingest_rps"), " readings/s", 0), f"COPY of the same rows {_fmt(r.get('copy_rps'), ' rows/s', 0)}",
         _fmt(r.get("ingest_ratio")), r.get("ingest_rps")),
        (f"a box's first reading ({r.get('first_reading_boxes', '–')} boxes, 100 a request)",
         _fmt(r.get("first_reading_rps"), " readings/s", 0), f"HTTP ingest above {_fmt(r.get('ingest_rps'), ' readings/s', 0)}",
         _fmt(r["first_reading_rps"] / r["ingest_rps"] if r.get("first_reading_rps") and r.get("ingest_rps") else None),
         r.get("first_reading_rps")),
        ("1,000-label PDF sheet", _fmt(lab.get("sheet_1000_s"), " s", 2),
         f"QR PNG {_fmt(lab.get('qr_png_per_s'), '/s', 0)} vs zxing-cpp {_fmt(lab.get('zxing_per_s'), '/s', 0)}",
         _fmt(lab.get("qr_vs_zxing")), lab.get("sheet_1000_s")),
    ]  # fmt: skip
    rows.append(
        ("synergy index scores, all counties (`/api/v1/index/scores?period=YYYY`)", _fmt(r.get("index_scores_s"), " s", 3),
         f"a year without data ({r.get('index_empty_year', '–')}): {_fmt(r.get('index_empty_s'), ' s', 3)}",
         _fmt(r.get("index_ratio")), r.get("index_scores_s"))
    )  # fmt: skip
    for view in ("outgoing", "incoming", "transported", "managed"):
        v = reg.get(view, NA)
        label = f"registry `GET /api/v1/registry/{view}.csv`"
        if isinstance(v, dict):
            month = v.get("month") or {}
            rows.append((f"{label} as `{v.get('login', '?')}`",
                         f"{_fmt(v['seconds'], ' s', 1)}, {v['rows']:,} rows, worker peak RSS {_fmt(v['worker_peak_rss_mb'], ' MB', 0)}",
                         f"one month: {_fmt(month.get('seconds'), ' s', 2)}, {month.get('rows', 0):,} rows, "
                         f"RSS {_fmt(month.get('worker_peak_rss_mb'), ' MB', 0)}",
                         f"{_fmt(v.get('rate_ratio'))} (rows/s)", v["seconds"]))  # fmt: skip
        else:
            rows.append((label, str(v), "–", "–", None))
    verify = r.get("statistics_verify", NA)
    rows.append(("`flask statistics verify`", verify if isinstance(verify, str) else _fmt(verify["seconds"], " s", 1),
                 "–", "–", None if isinstance(verify, str) else verify["seconds"]))  # fmt: skip
    return rows


def write_markdown(path: Path, info: dict, results: list[dict]) -> str:
    lines = [
        "# Benchmarks at city scale",
        "",
        "Written by `scripts/bench_scale.py` (`scripts/bench --scale N`); do not edit by hand. Every figure",
        "is measured against its baseline in the same run; on a shared machine the ratios matter, not the",
        "absolute numbers.",
        "",
        f"Machine: {info['cores']} cores ({info['cpu']}), {info['ram_gb']} GB RAM, PostgreSQL {info['postgresql']},",
        f"Python {info['python']}; run {info['date']}; load average at the end {', '.join(f'{x:.1f}' for x in info['load_average'])}",
        "(the machine was shared with other engineers' test runs). gunicorn 2 workers, wrk -t2 -c16.",
        'Figures marked "not available" are endpoints or commands that do not exist yet in this build.',
        "",
    ]
    for r in results:
        counts = r.get("counts", {})
        generated = (
            f"Data set generated in {r.get('generate_s') or 0:.0f} s (`flask demo generate --scale {r['scale']:g}`"
        )
        if r.get("generated_by"):
            generated += f"; measured by {r['generated_by']}"
        elif r.get("generate_load_average"):
            generated += f"; load average at its end {', '.join(f'{x:.1f}' for x in r['generate_load_average'])}"
        lines += [
            f"## Scale {r['scale']:g}×",
            "",
            generated + "): " + ", ".join(f"{v:,} {k}" for k, v in counts.items()) + ".",
            "",
            "| work | figure | baseline | ratio |",
            "|---|---|---|---|",
        ]
        lines += [f"| {w} | {f} | {b} | {q} |" for w, f, b, q, _ in figure_rows(r)]
        errors = {k: v for k, v in r.items() if k.endswith("_error") or (k.endswith("_failures") and v)}
        if errors:
            lines += ["", "Errors: " + "; ".join(f"{k}: {v}" for k, v in errors.items())]
        lines.append("")
    if len(results) >= 2:
        small, large = results[0], results[-1]
        factor = large["scale"] / small["scale"]
        lines += [f"## Cost curve ({large['scale']:g}× against {small['scale']:g}×, {factor:g} times the data)", "",
                  "| work | ratio of the figures |", "|---|---|"]  # fmt: skip
        for (w, _, _, _, a), (_, _, _, _, b) in zip(figure_rows(small), figure_rows(large), strict=True):
            lines.append(f"| {w} | {_fmt(b / a) if a and b else '–'} |")
        lines.append("")
    text = "\n".join(lines)
    path.write_text(text)
    return text


def _aware_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, action="append", help="1: 10,000 boxes (repeatable)")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per URL")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures as JSON")
    parser.add_argument("--render", type=Path, default=None, help="only write the page again from a --json file")
    parser.add_argument(
        "--template",
        metavar="DB",
        default=None,
        help="clone the largest scale's data set from this already generated database",
    )
    parser.add_argument(
        "--generated-seconds",
        type=float,
        default=None,
        help="with --template: the generation time an earlier run measured for it",
    )
    parser.add_argument(
        "--generated-now",
        type=datetime.fromisoformat,
        default=None,
        help="with --template: the data set's present (default: its newest reading + 1 minute)",
    )
    args = parser.parse_args()
    if args.template and args.generated_seconds is None:
        parser.error("--template needs --generated-seconds (the time the earlier run took to generate it)")
    admin_url = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    if args.render:
        results = json.loads(args.render.read_text())
        info = results[-1].get("machine") or machine(admin_url)
        print(write_markdown(args.output, info, results))
        return
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (apt-get install wrk)")
    scales = sorted(args.scale or [1.0])
    label_figures = labels()
    results = []
    for scale in scales:
        cloned = args.template if scale == scales[-1] else None
        result = (
            run_scale(scale, args.seconds, admin_url, cloned, args.generated_seconds, args.generated_now)
            | label_figures
        )
        result["machine"] = machine(admin_url)
        results.append(result)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
        print(write_markdown(args.output, result["machine"], results), flush=True)


if __name__ == "__main__":
    sys.exit(main())
