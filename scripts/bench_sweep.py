"""The colour sweep with every box due, as ``scripts/bench_scale.py`` measures it, against the
same measurement of another checkout (the baseline) in the same run, alternately on one database.

    .venv/bin/python scripts/bench_sweep.py DATABASE_URL [--baseline /work/main] [--rounds 3]

Each round: ``UPDATE boxes SET colour_next_check_at = now() - 1 s``, then ``flask boxes
refresh-colours`` of each checkout in turn (the order alternates), timed from the process start;
``flask --help`` gives the start-up alone. Prints the times, their ratio, the boxes table's
updates (HOT among them) and the load average. Never fails on a figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent


def _env(url: str, root: Path) -> dict[str, str]:
    return {**os.environ, "APP_ENV": "development", "FLASK_APP": "wsgi", "DATABASE_URL": url, "PYTHONPATH": str(root)}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(root: Path, url: str, args: list[str]) -> tuple[float, str]:
    began = time.perf_counter()
    out = subprocess.run(
        [str(root / ".venv" / "bin" / "flask"), *args], cwd=root, env=_env(url, root), capture_output=True, text=True
    )
    elapsed = time.perf_counter() - began
    last = (out.stdout or out.stderr).strip().splitlines()[-1:]
    return elapsed, " ".join(last)


def _counters(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'boxes'")
        ).one()
    return int(row[0]), int(row[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--baseline", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--args", default="boxes refresh-colours")
    parser.add_argument(
        "--vacuum", action="store_true", help="VACUUM boxes before each round (the same table for each)"
    )
    args = parser.parse_args()
    engine = sa.create_engine(args.url.replace("postgresql://", "postgresql+psycopg://"))
    roots = {"this": ROOT}
    if args.baseline:
        roots = {"baseline": Path(args.baseline), **roots}
    times: dict[str, list[float]] = {name: [] for name in roots}
    startups: dict[str, list[float]] = {name: [] for name in roots}
    for k in range(args.rounds):
        order = list(roots) if k % 2 == 0 else list(reversed(roots))
        for name in order:
            if args.vacuum:
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(sa.text("VACUUM boxes"))
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE boxes SET colour_next_check_at = now() - interval '1 second'"))
                conn.execute(sa.text("ANALYZE boxes"))
            time.sleep(1.5)  # the stats collector
            upd0, hot0 = _counters(engine)
            cpu0 = _children_cpu()
            elapsed, out = _run(roots[name], args.url, args.args.split())
            cpu = _children_cpu() - cpu0
            time.sleep(1.5)
            upd1, hot1 = _counters(engine)
            startup, _ = _run(roots[name], args.url, ["--help"])
            times[name].append(elapsed)
            startups[name].append(startup)
            load = os.getloadavg()
            print(
                f"round {k} {name:8s} {elapsed:6.2f} s (start-up {startup:4.2f} s, Python CPU {cpu:5.2f} s) {out!r} "
                f"updates {upd1 - upd0} hot {hot1 - hot0} load {load[0]:.2f} {load[1]:.2f}",
                flush=True,
            )
    for name in roots:
        print(
            f"{name:8s} median {statistics.median(times[name]):6.2f} s, start-up {statistics.median(startups[name]):4.2f} s"
        )
    if args.baseline:
        print(f"ratio this/baseline {statistics.median(times['this']) / statistics.median(times['baseline']):.3f}")


if __name__ == "__main__":
    main()
