"""Registry export benchmark: CSV and XLSX of N manifest lines on PostgreSQL, time and peak memory.

    .venv/bin/python scripts/bench_registry.py [--sizes 10000,100000] [--formats csv,xlsx] [--keep]

Creates a scratch PostgreSQL database ``registry_bench_<pid>`` (127.0.0.1:5432, user postgres; dropped
at the end unless ``--keep``), its schema (create_all),
an operator and three parties, then bulk-inserts N manifests of one line each in SQL
(``generate_series``: seconds, not the product's steps). Each export runs in a child process of
its own, so that its peak RSS (``ru_maxrss``) is that export's alone: the child reads
``export_rows(session, operator, "managed")`` and writes it with ``write_csv`` / ``write_xlsx``
to a temporary file, and reports rows, seconds, rows/s and peak RSS. At the smallest size the
XLSX is also written the way it was before (openpyxl's write-only mode, format ``openpyxl``) as
the baseline of the same run.

Printed: per size and format the time, rows/s and peak RSS; then per format the seconds 10⁶ rows
take at the largest size's rate against the target, the ratio of the peak RSS at the largest to the
smallest size against ≈ 1.0, and the XLSX's speed as a ratio of openpyxl's. Targets (issue 12): 10⁶
rows in < 60 s; the same peak at 10⁴ and 10⁶. Prints, never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _admin(sql: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(sql))
    engine.dispose()


def _app(url: str):
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("APP_ENV", "development")  # a scratch database: no real secret needed
    os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="bench-registry-"))
    from app import create_app

    return create_app()


def setup(url: str) -> None:
    from werkzeug.security import generate_password_hash

    from app.accounts.models import User
    from app.accounts.reference import ensure_counties
    from app.accounts.services import Principal, create_organization
    from app.extensions import db

    app = _app(url)
    with app.app_context():
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
        for name, roles in [
            ("天台基准橡胶有限公司", ["generator"]),
            ("台州基准危运有限公司", ["carrier"]),
            ("台州基准再生炭有限公司", ["receiver", "regenerator"]),
        ]:
            create_organization(db.session, actor, {"name": name, "roles": roles, "county_code": "331023"})
        db.session.commit()
        db.engine.dispose()


def fill(url: str, total: int) -> float:
    """Tops the registry up to ``total`` lines (one manifest each) in two INSERT … SELECT."""
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    started = time.perf_counter()
    with engine.begin() as conn:
        have = conn.scalar(sa.text("SELECT count(*) FROM manifest_lines"))
        ids = conn.execute(sa.text("SELECT id FROM organizations ORDER BY id")).scalars().all()
        consignor, carrier, receiver = ids[:3]
        params = {"lo": have + 1, "hi": total, "c": consignor, "t": carrier, "r": receiver}
        conn.execute(
            sa.text(
                "INSERT INTO manifests (number, origin, status, consignor_id, carrier_id, receiver_id,"
                " receiver_licence, route, note, vehicle_plate, driver_name, driver_phone, created_at,"
                " submitted_at, picked_up_at, received_at, processed_at, closed_at, reject_reason, acceptance,"
                " discrepant, overdue, late_entry, version)"
                " SELECT '2026' || lpad(i::text, 10, '0'), 'electronic', 'closed', :c, :t, :r,"
                " '浙危废经第331000012号', '', '', '浙J12345', '王师傅', '', t, t, t, t + interval '5 hours',"
                " t + interval '2 days', t + interval '2 days', '', 'full', false, false, false, 1"
                " FROM (SELECT i, timestamp '2025-01-01' + i * interval '30 seconds' AS t"
                " FROM generate_series(CAST(:lo AS integer), CAST(:hi AS integer)) AS i) AS s"
            ),
            params,
        )
        conn.execute(
            sa.text(
                "INSERT INTO manifest_lines (manifest_id, line_no, waste_code, waste_name, category,"
                " physical_form, hazard, packaging, quantity_kg, requested_batches, received_kg, accepted_kg,"
                " refusal_reason, confirmed_unusual, method_code, consumed_kg)"
                " SELECT m.id, 1, '900-039-49', '烟气、VOCs治理过程产生的废活性炭', 'HW49', 'solid', 'T', '吨袋',"
                " 1000 + (m.id % 997) / 1000.0, '[]', 1000 + (m.id % 997) / 1000.0,"
                " 1000 + (m.id % 997) / 1000.0, '', false, 'R7', 0"
                " FROM manifests m WHERE NOT EXISTS (SELECT 1 FROM manifest_lines l WHERE l.manifest_id = m.id)"
            )
        )
        conn.execute(sa.text("ANALYZE manifests; ANALYZE manifest_lines"))
    engine.dispose()
    return time.perf_counter() - started


def child(url: str, fmt: str) -> None:
    """One export, in this process alone: prints {rows, seconds, peak_rss_kb, bytes} as JSON."""
    from app.accounts.models import User
    from app.accounts.services import Principal
    from app.extensions import db
    from app.ledger.services import registry_export

    app = _app(url)
    with app.app_context():
        actor = Principal(user=db.session.query(User).filter_by(username="bench-op").one())
        with tempfile.TemporaryFile() as out:
            base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started, cpu_started = time.perf_counter(), time.process_time()
            rows = registry_export.export_rows(db.session, actor, "managed")
            writer = {"csv": registry_export.write_csv, "xlsx": registry_export.write_xlsx, "openpyxl": openpyxl_xlsx}
            count = writer[fmt](rows, out)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            size = out.tell()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "rows": count,
                "seconds": seconds,
                "cpu": cpu,
                "peak_rss_kb": peak,
                "start_rss_kb": base_rss,
                "bytes": size,
            }
        )
    )


def openpyxl_xlsx(rows, fp) -> int:
    """The XLSX as the product wrote it before (openpyxl write-only, bold frozen header): the baseline."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    from app.ledger.services import registry_export

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("registry")
    ws.freeze_panes = "A2"
    heading = []
    for text in registry_export.header("zh"):
        cell = WriteOnlyCell(ws, value=text)
        cell.font = Font(bold=True)
        heading.append(cell)
    ws.append(heading)
    kinds = [
        float
        if name in registry_export.NUMBER_FIELDS
        else registry_export.safe_text
        if name in registry_export.TEXT_FIELDS
        else str
        for name in registry_export.FIELDS
    ]
    count = 0
    for cells in rows:
        ws.append([kind(v) if v else None for kind, v in zip(kinds, cells, strict=True)])
        count += 1
    wb.save(fp)
    return count


def run_child(url: str, fmt: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", fmt, "--url", url], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.url, args.child)
        return
    name = f"registry_bench_{os.getpid()}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        setup(url)
        results: dict[tuple[str, int], dict] = {}
        sizes = sorted(int(s) for s in args.sizes.split(","))
        formats = args.formats.split(",")
        print(f"machine: {os.cpu_count()} CPUs; PostgreSQL 127.0.0.1; python {sys.version.split()[0]}")
        print(
            f"load average {os.getloadavg()[0]:.1f} (the machine is shared: wall time varies; CPU s is this process's)"
        )
        print(f"{'rows':>9} {'format':>8} {'seconds':>8} {'CPU s':>7} {'rows/s':>9} {'peak RSS MB':>12} {'file MB':>8}")
        for size in sizes:
            loaded = fill(url, size)
            print(f"# loaded up to {size:,} lines in {loaded:.1f} s")
            baseline = ["openpyxl"] if size == sizes[0] and "xlsx" in formats else []
            for fmt in formats + baseline:
                r = run_child(url, fmt)
                results[(fmt, size)] = r
                print(
                    f"{r['rows']:>9,} {fmt:>8} {r['seconds']:>8.2f} {r['cpu']:>7.2f} {r['rows'] / r['seconds']:>9,.0f}"
                    f" {r['peak_rss_kb'] / 1024:>12.1f} {r['bytes'] / 2**20:>8.1f}"
                )
        small, large = sizes[0], sizes[-1]
        for fmt in formats:
            a, b = results[(fmt, small)], results[(fmt, large)]
            per_million = b["seconds"] / b["rows"] * 1e6
            rss_ratio = b["peak_rss_kb"] / a["peak_rss_kb"]
            print(
                f"{fmt}: 10⁶ rows ≈ {per_million:.0f} s at {large:,} rows' rate (target < 60 s:"
                f" {'met' if per_million < 60 else 'NOT met'}); peak RSS at {large:,} / at {small:,} ="
                f" {rss_ratio:.2f} (target ≈ 1.00: {'met' if rss_ratio < 1.1 else 'NOT met'})"
            )
        if ("openpyxl", small) in results:
            mine, theirs = results[("xlsx", small)], results[("openpyxl", small)]
            ratio = (mine["rows"] / mine["seconds"]) / (theirs["rows"] / theirs["seconds"])
            print(f"xlsx: {ratio:.1f}× the rows/s of openpyxl's write-only mode at {small:,} rows (same run)")
    finally:
        if not args.keep:
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
