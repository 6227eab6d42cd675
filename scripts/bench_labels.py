#!/usr/bin/env python
"""Benchmark carbon box code label rendering.

Run from the project root:  .venv/bin/python scripts/bench_labels.py [N]

Times, on fresh (uncached) URLs:
  * the ``qrcode`` library's defaults (``qrcode.make(url)`` saved as PNG) per
    code -- the baseline, dominated by automatic mask selection;
  * ``segno`` with automatic mask selection, matrix only (for reference);
  * ``app.labels.qr.qr_matrix`` (segno, fixed mask) per code;
  * ``app.labels.qr.qr_png`` per code (matrix + PNG);
  * ``app.labels.qr.qr_svg`` per code;
  * ``app.labels.pdf.label_sheet_pdf`` for N labels (default 1,000; target <= 2 s).

With ``--json`` it also prints, last, one line of JSON with the figures ``scripts/bench_scale.py``
collects (sheet seconds, QR PNGs per second, zxing-cpp's encoder per second when installed).

Prints figures only; it never asserts on timings.  Exit status 0.
"""

from __future__ import annotations

import io
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running without an installed package
    sys.path.insert(0, str(ROOT))

import qrcode  # noqa: E402
import segno  # noqa: E402

from app.labels import qr as qrmod  # noqa: E402
from app.labels.pdf import LabelSpec, label_sheet_pdf, page_count  # noqa: E402
from app.labels.signing import label_url  # noqa: E402

BASE = "https://tanxiang.tzhb.gov.cn"
SECRET = "bench-secret"
COLOURS = ("grey", "green", "yellow", "red")
ENTERPRISES = (
    "台州市黄岩华丰精细化工有限公司",
    "浙江台州某某药业股份有限公司第三分厂喷涂车间",
    "温岭市东方机电有限公司",
)

_run = 0


def urls(n: int) -> list[str]:
    """n distinct, never-seen-before URLs (so lru caches cannot help)."""
    global _run
    _run += 1
    return [label_url(BASE, f"TZ{_run:02d}{i:08d}", 1, SECRET) for i in range(n)]


def per_code(fn, data: list[str]) -> float:
    t = time.perf_counter()
    for u in data:
        fn(u)
    return (time.perf_counter() - t) / len(data)


def qrcode_default_png(url: str) -> bytes:
    buf = io.BytesIO()
    qrcode.make(url).save(buf)
    return buf.getvalue()


def segno_auto_mask(url: str):
    return segno.make(url, error="m", micro=False, boost_error=False).matrix


def zxing_qr(url: str):
    """zxing-cpp's QR encoder (matrix and bitmap image, no PNG compression): the issue's reference speed."""
    import zxingcpp

    return zxingcpp.write_barcode_to_image(zxingcpp.create_barcode(url, zxingcpp.BarcodeFormat.QRCode), scale=4)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--json"]
    n_labels = int(args[0]) if args else 1000
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    sample = urls(1)[0]
    m = qrmod.qr_matrix(sample)
    print(f"sample URL ({len(sample)} chars): {sample}")
    print(
        f"QR: version {m.version}, {m.size}x{m.size} modules, level {m.error.upper()}, "
        f"fixed mask {m.mask}, {len(qrmod.qr_rects(sample))} merged rectangles"
    )
    print()

    t_qrcode = per_code(qrcode_default_png, urls(100))
    t_segno_auto = per_code(segno_auto_mask, urls(300))
    t_matrix = per_code(qrmod.qr_matrix, urls(500))
    t_png = per_code(qrmod.qr_png, urls(500))
    t_svg = per_code(qrmod.qr_svg, urls(500))

    try:
        t_zxing: float | None = per_code(zxing_qr, urls(500))
    except ImportError:
        t_zxing = None
    print(f"qrcode default (qrcode.make -> PNG): {ms(t_qrcode)} per code   [baseline]")
    if t_zxing is not None:
        print(
            f"zxing-cpp encoder (matrix + image):  {ms(t_zxing)} per code; qr_png = {t_zxing / t_png:.2f} of its speed"
        )
    print(f"segno auto mask, matrix only:        {ms(t_segno_auto)} per code")
    print(f"qr_matrix (segno, fixed mask):       {ms(t_matrix)} per code")
    print(f"qr_png:  {ms(t_png)} per code vs qrcode default {ms(t_qrcode)}: {t_qrcode / t_png:.1f}x faster")
    print(f"qr_svg:  {ms(t_svg)} per code vs qrcode default {ms(t_qrcode)}: {t_qrcode / t_svg:.1f}x faster")
    print()

    sheet_times = []
    for rnd in range(2):
        specs = [
            LabelSpec(
                code=f"TZ{i:08d}",
                url=u,
                colour=COLOURS[i % 4],
                enterprise=ENTERPRISES[i % 3],
                facility=f"TA{i % 7 + 1:03d}",
                outlet=f"DA{i % 5 + 1:03d}",
            )
            for i, u in enumerate(urls(n_labels))
        ]
        t = time.perf_counter()
        pdf = label_sheet_pdf(specs)
        dt = time.perf_counter() - t
        sheet_times.append(dt)
        print(
            f"label sheet {n_labels} labels (run {rnd + 1}, cold QR cache): {dt:.2f} s "
            f"(target <= 2 s), {page_count(n_labels)} pages, {len(pdf) / 1024:.0f} KiB, "
            f"{dt / n_labels * 1000:.2f} ms/label"
        )
    t = time.perf_counter()
    label_sheet_pdf(specs)
    dt = time.perf_counter() - t
    print(f"label sheet {n_labels} labels (reprint, warm QR cache): {dt:.2f} s")
    est_qrcode = t_qrcode * n_labels
    print(f"for comparison, {n_labels} x qrcode default PNGs alone: ~{est_qrcode:.1f} s")
    if "--json" in sys.argv[1:]:
        figures = {
            f"sheet_{n_labels}_s": min(sheet_times),
            "qr_png_per_s": 1 / t_png,
            "qrcode_default_per_s": 1 / t_qrcode,
            "zxing_per_s": 1 / t_zxing if t_zxing else None,
            "qr_vs_zxing": t_zxing / t_png if t_zxing else None,
        }
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
