"""Mixed load: scan pages, API reads and sensor ingest at once, through gunicorn (2 workers) on
SQLite with the Taizhou demo data. Bounded in time (``BENCH_LOAD_SECONDS``, 30 by default, at most
60). Reports p50/p99 latency and the error count per kind; the target is 0 errors.

Prints figures; never asserts (not run by the tests). Every request is checked: an answer other
than 200 (or a batch with a rejected reading) counts as an error of its kind.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import VENV_BIN, free_port, wait_up

ROOT = Path(__file__).resolve().parent.parent
DURATION = min(60.0, float(os.environ.get("BENCH_LOAD_SECONDS", "30")))
THREADS = {"scan": 4, "api": 3, "ingest": 1}
BATCH = 200


def _json(base: str, path: str, token: str | None = None, body: dict | None = None):
    req = urllib.request.Request(
        base + path,
        method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tanxiang-load-"))
    port = free_port()
    password = "bench-password-1"
    env = {
        **os.environ,
        "APP_ENV": "development",
        "INSTANCE_PATH": str(tmp),
        "FLASK_APP": "wsgi",
        "DATABASE_URL": f"sqlite:///{tmp}/load.sqlite3",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "PASSWORD": password,
    }
    flask = str(VENV_BIN / "flask")
    for args in (["db", "upgrade"], ["demo"], ["create-superuser", "bench"]):
        subprocess.run([flask, *args], cwd=ROOT, env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(base + "/healthz")
        token = _json(base, "/api/v1/auth/token", body={"username": "bench", "password": password})["token"]
        boxes = _json(base, "/api/v1/boxes?per_page=500", token)["items"]
        codes = [b["code"] for b in boxes]
        sensor = [b for b in boxes if b.get("has_sensors")] or boxes
        target = sensor[0]
        device = _json(
            base, "/api/v1/device-tokens", token, {"organization_id": target["enterprise_id"], "name": "load"}
        )["token"]
        ingest_codes = [b["code"] for b in sensor if b["enterprise_id"] == target["enterprise_id"]]
        run(base, token, device, codes, ingest_codes)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


def run(base: str, token: str, device: str, codes: list[str], ingest_codes: list[str]) -> None:
    port = int(base.rsplit(":", 1)[1])
    latencies: dict[str, list[float]] = {kind: [] for kind in THREADS}
    errors: dict[str, list[str]] = {kind: [] for kind in THREADS}
    lock = threading.Lock()
    stop = time.monotonic() + DURATION
    clock = [datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)]

    def request(kind: str, rng: random.Random) -> tuple[str, str, bytes | None, dict[str, str]]:
        if kind == "scan":
            return "GET", f"/c/{rng.choice(codes)}", None, {}
        auth = {"Authorization": f"Bearer {token}"}
        if kind == "api":
            path = rng.choice(
                [
                    f"/api/v1/boxes/{rng.choice(codes)}",
                    "/api/v1/boxes?per_page=20",
                    f"/api/v1/boxes/{rng.choice(codes)}/history",
                ]
            )
            return "GET", path, None, auth
        with lock:
            start = clock[0]
            clock[0] += timedelta(seconds=10 * BATCH)
        code = rng.choice(ingest_codes)
        readings = [
            {
                "box_code": code,
                "ts": (start + timedelta(seconds=10 * i)).isoformat(),
                "running": True,
                "inlet_mg_m3": 100.0,
                "outlet_mg_m3": 20.0,
                "airflow_m3_h": 5000.0,
                "pressure_drop_pa": 800.0,
            }
            for i in range(BATCH)
        ]
        return (
            "POST",
            "/api/v1/readings",
            json.dumps({"readings": readings}).encode(),
            {"Authorization": f"Bearer {device}", "Content-Type": "application/json"},
        )

    def worker(kind: str, seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            method, path, body, headers = request(kind, rng)
            began = time.perf_counter()
            problem = None
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != 200:
                    problem = f"{method} {path}: HTTP {resp.status} {data[:120]!r}"
                elif kind == "ingest" and json.loads(data).get("rejected"):
                    problem = f"ingest: rejected {json.loads(data)['rejected'][:1]}"
            except (OSError, http.client.HTTPException) as exc:
                problem = f"{method} {path}: {exc!r}"
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            elapsed = time.perf_counter() - began
            with lock:
                latencies[kind].append(elapsed)
                if problem:
                    errors[kind].append(problem)

    threads = [
        threading.Thread(target=worker, args=(kind, i * 100 + n))
        for i, (kind, count) in enumerate(THREADS.items())
        for n in range(count)
    ]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - began
    print(
        f"mixed load for {wall:.0f} s through gunicorn (2 workers), SQLite demo data; threads {THREADS}, "
        f"ingest batches of {BATCH} readings"
    )
    print(f"{'kind':8} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for kind, values in latencies.items():
        if not values:
            print(f"{kind:8} {'0':>9}")
            continue
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(
            f"{kind:8} {len(values):9d} {len(values) / wall:7.1f} {statistics.median(values) * 1000:8.1f} "
            f"{p99 * 1000:8.1f} {len(errors[kind]):7d}"
        )
    for kind, problems in errors.items():
        for problem in problems[:3]:
            print(f"  {kind} error: {problem}")
    total = sum(len(p) for p in errors.values())
    print("errors: 0 (target met)" if total == 0 else f"errors: {total} (target: 0)")


if __name__ == "__main__":
    sys.exit(main())
