"""HTTP read benchmark: the scan page and GET /api/v1/boxes/{code} against /healthz on the same
gunicorn server (2 workers, SQLite, Taizhou demo data). Target: each ≥ 0.6 of /healthz.

Prints figures and ratios; never asserts. The load generator is wrk (Debian) when present,
else a Python thread pool (slower: it shares the 2 cores with the server, so ratios matter more
than absolute figures).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
DURATION = float(os.environ.get("BENCH_SECONDS", "8"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server did not come up at {url}")


def wrk(url: str, headers: dict[str, str]) -> float:
    args = ["wrk", "-t2", "-c16", f"-d{int(DURATION)}s", "--latency"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    non2xx = [line for line in out.splitlines() if "Non-2xx" in line]
    if non2xx:
        raise SystemExit(f"{url}: {non2xx[0].strip()}\n{out}")
    line = next(line for line in out.splitlines() if line.startswith("Requests/sec"))
    return float(line.split()[1])


def python_load(url: str, headers: dict[str, str]) -> float:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    count = [0]
    stop = time.time() + DURATION
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection(parts.hostname, parts.port)
        n = 0
        while time.time() < stop:
            conn.request("GET", parts.path + ("?" + parts.query if parts.query else ""), headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise SystemExit(f"{url}: HTTP {resp.status}")
            n += 1
        with lock:
            count[0] += n

    threads = [threading.Thread(target=worker) for _ in range(8)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count[0] / (time.time() - start)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tanxiang-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "development",
        "INSTANCE_PATH": str(tmp),
        "FLASK_APP": "wsgi",
        "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "PASSWORD": "bench-password-1",
    }
    flask = str(VENV_BIN / "flask")
    subprocess.run([flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([flask, "demo"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([flask, "create-superuser", "bench"], cwd=ROOT, env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(base + "/healthz")
        req = urllib.request.Request(
            base + "/api/v1/auth/token",
            method="POST",
            data=json.dumps({"username": "bench", "password": "bench-password-1"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        token = json.load(urllib.request.urlopen(req))["token"]
        auth = {"Authorization": f"Bearer {token}"}
        boxes = json.load(
            urllib.request.urlopen(
                urllib.request.Request(base + "/api/v1/boxes?colour=yellow&per_page=1", headers=auth)
            )
        )
        if not boxes["items"]:
            boxes = json.load(
                urllib.request.urlopen(urllib.request.Request(base + "/api/v1/boxes?per_page=1", headers=auth))
            )
        code = boxes["items"][0]["code"]
        load = wrk if shutil.which("wrk") else python_load
        print(
            f"load generator: {'wrk -t2 -c16' if load is wrk else 'python threads (install wrk for better figures)'}, "
            f"{DURATION:.0f} s per URL, gunicorn 2 workers, SQLite with the demo data; box {code}"
        )
        # Warm up each URL (imports, caches) before measuring.
        for path, headers in (("/healthz", {}), (f"/c/{code}", {}), (f"/api/v1/boxes/{code}", auth)):
            urllib.request.urlopen(urllib.request.Request(base + path, headers=headers)).read()
        health = load(base + "/healthz", {})
        scan = load(base + f"/c/{code}", {})
        api = load(base + f"/api/v1/boxes/{code}", auth)
        print(f"/healthz                     {health:8.0f} req/s   (baseline)")
        print(f"/c/{{code}} scan page          {scan:8.0f} req/s   ratio {scan / health:.2f}  (target ≥ 0.60)")
        print(f"GET /api/v1/boxes/{{code}}     {api:8.0f} req/s   ratio {api / health:.2f}  (target ≥ 0.60)")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
