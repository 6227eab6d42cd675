"""City-scale benchmark (issue 12): generate the data set on PostgreSQL, measure every figure of
the issue's table against its baseline in the same run, write ``docs/benchmarks.md``.

    .venv/bin/python scripts/bench_scale.py --scale 1 [--scale 10] [--seconds 10] [--json out.json]

For each scale: a scratch database ``tanxiang_bench_<scale>_<pid>`` (``BENCH_PG_URL``, default
the local server), ``flask db upgrade``, ``flask demo generate --scale N`` (the product's bulk
paths, :mod:`app.demo.generate`), then gunicorn with 2 workers on it and the figures below. With
two scales the cost curve is the ratio of the larger scale's figure to the smaller's. A figure
whose endpoint or command does not exist yet is reported "not available". Prints, never asserts.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
sys.path.insert(0, str(ROOT))

from scripts.bench_http import wait_up  # noqa: E402
from scripts.bench_reads import wrk  # noqa: E402

PASSWORD = "bench-password-1"  # app.demo.generate.PASSWORD
INGEST_BATCHES = 60
NA = "not available"


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
    health, h50, h99 = wrk(server.base + "/healthz", {}, seconds, None, tmp)
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


def ingest_bodies(codes: list[str], start: datetime, batches: int) -> list[list[dict]]:
    """Batches of one reading per box (up to 1,000 distinct boxes), a second apart, every one new."""
    codes = codes[:1000]
    return [
        [
            {
                "box_code": code,
                "ts": (start + timedelta(seconds=b)).isoformat(),
                "running": True,
                "inlet_mg_m3": 90.0,
                "outlet_mg_m3": 12.0,
                "airflow_m3_h": 15000.0,
                "pressure_drop_pa": 700.0,
                "inlet_temp_c": 30.0,
                "bed_temp_c": 34.0,
                "rh_pct": 55.0,
            }
            for code in codes
        ]
        for b in range(batches)
    ]


def post_batches(base: str, token: str, batches: list[list[dict]], threads: int) -> tuple[float, int, list[str]]:
    port = int(base.rsplit(":", 1)[1])
    queue, lock = list(batches), threading.Lock()
    accepted, failures = [0], []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while True:
            with lock:
                if not queue:
                    return
                items = queue.pop(0)
            body = json.dumps({"readings": items})
            conn.request("POST", "/api/v1/readings", body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            with lock:
                if resp.status != 200:
                    failures.append(f"HTTP {resp.status}: {data[:200]!r}")
                else:
                    accepted[0] += json.loads(data)["accepted"]

    began = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
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
        box_ids = dict(conn.execute(sa.text("SELECT code, id FROM boxes")).tuples().all())
    batches = ingest_bodies(fed, start, INGEST_BATCHES)
    http_rate, accepted, failures = post_batches(server.base, token, batches, threads=4)
    copy_rate = copy_baseline(engine, batches, box_ids)
    first_batches = [[item] for item in ingest_bodies(fresh, start, 1)[0]]  # one box's first reading a request
    first = [first_batches[i : i + 100] for i in range(0, len(first_batches), 100)]
    first_rate, first_n, first_failures = post_batches(server.base, token, [sum(b, []) for b in first], threads=1)
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
        [str(VENV_BIN / "python"), "scripts/bench_labels.py", "1000", "--json"], cwd=ROOT, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"labels_error": out.stderr[-300:]}


def registry_export(server: Server, token: str) -> dict:
    results: dict = {}
    for view in ("outgoing", "incoming", "transported", "managed"):
        before = server.workers_peak_rss_mb()
        began = time.perf_counter()
        try:
            status, body = request(server.base, f"/api/v1/registry/{view}.csv", token)
        except urllib.error.HTTPError as exc:
            results[view] = NA if exc.code in (404, 405) else f"HTTP {exc.code}"
            continue
        results[view] = {
            "seconds": time.perf_counter() - began,
            "rows": body.count(b"\n") - 1,
            "worker_peak_rss_mb": server.workers_peak_rss_mb(),
            "worker_peak_rss_before_mb": before,
        }
    return {"registry": results}


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
