"""Unit tests for app.labels (signing, QR rendering, PDF label sheets).

Pure library tests: no Flask app, no database.
"""

from __future__ import annotations

import io
import re
import shutil
import string
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pypdf
import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from app.labels.pdf import (
    LABELS_PER_PAGE,
    LEGEND_TEXT,
    LabelSpec,
    label_sheet_pdf,
    page_count,
)
from app.labels.qr import qr_matrix, qr_png, qr_svg
from app.labels.signing import SIGNATURE_LENGTH, label_url, sign_label, verify_label
from app.labels.vector_qr import TABLE_MAX_SIZE, pdf_path

SECRET = "test-secret-不要在生产使用"
BASE = "https://tanxiang.tzhb.gov.cn"
COLOURS = ("grey", "green", "yellow", "red")
ENTERPRISES = (
    "台州市黄岩华丰精细化工有限公司",
    "浙江台州某某药业股份有限公司第三分厂喷涂车间",
    "温岭市东方机电有限公司",
)


def _specs(n: int) -> list[LabelSpec]:
    out = []
    for i in range(n):
        code = f"TZ{i:08d}"
        out.append(
            LabelSpec(
                code=code,
                url=label_url(BASE, code, 1, SECRET),
                colour=COLOURS[i % 4],
                enterprise=ENTERPRISES[i % 3],
                facility=f"TA{i % 7 + 1:03d}",
                outlet=f"DA{i % 5 + 1:03d}",
            )
        )
    return out


def _decode_all(img: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(img)]


# ----------------------------------------------------------------- signing
def test_signature_shape_and_determinism():
    sig = sign_label(SECRET, "TZ00000001", 1)
    assert len(sig) == SIGNATURE_LENGTH == 16
    assert set(sig) <= set(string.ascii_lowercase + "234567")  # base32, URL-safe
    assert sig == sign_label(SECRET, "TZ00000001", 1)


def test_signature_round_trip():
    sig = sign_label(SECRET, "TZ00000001", 3)
    assert verify_label(SECRET, "TZ00000001", 3, sig) is True
    # base32 is case-insensitive; scanners sometimes upper-case URLs
    assert verify_label(SECRET, "TZ00000001", 3, sig.upper()) is True


def test_signature_tamper_detection():
    sig = sign_label(SECRET, "TZ00000001", 3)
    assert verify_label(SECRET, "TZ00000002", 3, sig) is False  # other box
    assert verify_label(SECRET, "TZ00000001", 4, sig) is False  # reprinted label
    assert verify_label(SECRET, "TZ00000001", 2, sig) is False
    assert verify_label("another-secret", "TZ00000001", 3, sig) is False
    flipped = ("a" if sig[0] != "a" else "b") + sig[1:]
    assert verify_label(SECRET, "TZ00000001", 3, flipped) is False
    assert verify_label(SECRET, "TZ00000001", 3, sig[:-1]) is False
    assert verify_label(SECRET, "TZ00000001", 3, sig + "a") is False
    assert verify_label(SECRET, "TZ00000001", 3, "") is False


@pytest.mark.parametrize(
    "code, version, signature",
    [
        ("TZ00000001", 1, None),
        ("TZ00000001", 1, 12345),
        ("TZ00000001", 1, "签名签名签名签名签名签名签名签名"),  # non-ASCII must not raise
        ("TZ00000001", "1", "abcdefghijklmnop"),
        ("TZ00000001", True, "abcdefghijklmnop"),
        ("TZ00000001", -1, "abcdefghijklmnop"),
        ("", 1, "abcdefghijklmnop"),
        (None, 1, "abcdefghijklmnop"),
    ],
)
def test_verify_never_raises_on_garbage(code, version, signature):
    assert verify_label(SECRET, code, version, signature) is False


def test_sign_rejects_bad_input():
    with pytest.raises(TypeError):
        sign_label(SECRET, "TZ1", "1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sign_label(SECRET, "TZ1", -1)
    with pytest.raises(ValueError):
        sign_label("", "TZ1", 1)


@settings(max_examples=60, deadline=None)
@given(
    code=st.text(min_size=1, max_size=40),
    version=st.integers(min_value=0, max_value=10**6),
    other_version=st.integers(min_value=0, max_value=10**6),
)
def test_signature_property(code, version, other_version):
    sig = sign_label(SECRET, code, version)
    assert verify_label(SECRET, code, version, sig)
    if other_version != version:
        assert not verify_label(SECRET, code, other_version, sig)


def test_label_url_format():
    sig = sign_label(SECRET, "TZ00000042", 2)
    expected = f"{BASE}/c/TZ00000042?v=2&s={sig}"
    assert label_url(BASE, "TZ00000042", 2, SECRET) == expected
    assert label_url(BASE + "/", "TZ00000042", 2, SECRET) == expected
    assert label_url(BASE + "//", "TZ00000042", 2, SECRET) == expected
    m = re.fullmatch(r"(.+)/c/([^/?]+)\?v=(\d+)&s=([a-z2-7]{16})", expected)
    assert m is not None
    assert verify_label(SECRET, m.group(2), int(m.group(3)), m.group(4))


def test_label_url_escapes_code_as_one_path_segment():
    url = label_url(BASE, "A/B 1", 1, SECRET)
    assert url.startswith(f"{BASE}/c/A%2FB%201?v=1&s=")


# ---------------------------------------------------------------------- QR
URL = label_url(BASE, "TZ00000001", 1, SECRET)


def test_qr_matrix_shape_and_cache():
    m = qr_matrix(URL)
    assert m.size == 17 + 4 * m.version
    assert m.error == "m"
    assert m.mask == 0  # fixed mask: no mask-selection cost
    rows = m.rows
    assert len(rows) == m.size and all(len(r) == m.size for r in rows)
    assert all(isinstance(v, bool) for r in rows for v in r)
    # finder pattern: top-left 7x7 has a dark border
    assert all(rows[0][x] for x in range(7)) and all(rows[y][0] for y in range(7))
    assert qr_matrix(URL) is m  # lru_cache
    lists = m.to_lists()
    lists[0][0] = not lists[0][0]  # a private copy; cache must stay intact
    assert qr_matrix(URL).rows[0][0] is True


def _grid_of_ops(ops: str, size: int, pattern: str, offset: int = 0) -> list[list[bool]]:
    grid = [[False] * size for _ in range(size)]
    found = re.findall(pattern, ops)
    assert found
    for x, y, w, h in ((int(v) for v in f) for f in found):
        assert w >= 1 and h == 1
        for xx in range(x - offset, x - offset + w):
            assert not grid[y - offset][xx], "rectangles overlap"
            grid[y - offset][xx] = True
    return grid


@pytest.mark.parametrize("data", [URL, "x", "https://example.org/" + "q" * 300])
def test_pdf_path_covers_exactly_the_dark_modules(data):
    m = qr_matrix(data)
    assert (m.size > TABLE_MAX_SIZE) == (len(data) > 100)  # the last one is drawn run by run
    ops = pdf_path(m.raw)
    assert re.fullmatch(r"(\d+ \d+ \d+ 1 re )+", ops)  # nothing but rectangles
    assert tuple(tuple(r) for r in _grid_of_ops(ops, m.size, r"(\d+) (\d+) (\d+) (\d+) re")) == m.rows
    dark_runs = sum(len(re.findall(rb"\x01+", row)) for row in m.raw)
    assert dark_runs <= ops.count(" re") < 1.3 * dark_runs  # runs, split only at byte boundaries


def test_qr_png_round_trip():
    png = qr_png(URL)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    img = Image.open(io.BytesIO(png))
    assert img.size == ((qr_matrix(URL).size + 8) * 8,) * 2
    assert _decode_all(img) == [URL]


@pytest.mark.parametrize("scale, border", [(1, 4), (3, 2), (10, 0)])
def test_qr_png_geometry(scale, border):
    img = Image.open(io.BytesIO(qr_png(URL, scale=scale, border=border)))
    side = (qr_matrix(URL).size + 2 * border) * scale
    assert img.size == (side, side)
    if border:
        assert img.convert("L").getpixel((0, 0)) == 255  # quiet zone is white
    else:
        assert img.convert("L").getpixel((0, 0)) == 0  # finder corner is dark


def test_qr_png_decodes_for_many_urls():
    for i in range(25):
        url = label_url(BASE, f"TZ{i:08d}", i % 4 + 1, SECRET)
        assert _decode_all(Image.open(io.BytesIO(qr_png(url, scale=3)))) == [url]


def test_qr_rejects_bad_input():
    with pytest.raises(ValueError):
        qr_png("")
    with pytest.raises(ValueError):
        qr_png(URL, scale=0)
    with pytest.raises(ValueError):
        qr_svg(URL, border=-1)


def test_qr_svg_is_standalone_and_matches_matrix():
    svg = qr_svg(URL, scale=5, border=4)
    assert svg.startswith(b"<?xml")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    m = qr_matrix(URL)
    total = m.size + 8
    assert root.get("width") == root.get("height") == str(total * 5)
    assert root.get("viewBox") == f"0 0 {total} {total}"
    assert len(root.findall(f"{ns}rect")) == 1
    paths = root.findall(f"{ns}path")
    assert len(paths) == 1
    # Rebuild the module grid from the path data and compare with the matrix.
    grid = [[False] * m.size for _ in range(m.size)]
    cmds = re.findall(r"M(\d+) (\d+)h(\d+)v(\d+)h-(\d+)z", paths[0].get("d"))
    assert cmds
    for x, y, w, h, w2 in ((int(v) for v in c) for c in cmds):
        assert w == w2
        for yy in range(y - 4, y - 4 + h):
            for xx in range(x - 4, x - 4 + w):
                grid[yy][xx] = True
    assert tuple(tuple(r) for r in grid) == m.rows


# --------------------------------------------------------------------- PDF
@pytest.fixture(scope="module")
def sheet() -> tuple[list[LabelSpec], bytes]:
    specs = _specs(20)
    return specs, label_sheet_pdf(specs)


def test_pdf_header_and_page_count(sheet):
    _specs, pdf = sheet
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert LABELS_PER_PAGE == 8
    assert page_count(20) == 3
    assert len(reader.pages) == 3
    w, h = (float(v) for v in reader.pages[0].mediabox[2:])
    assert (round(w), round(h)) == (595, 842)  # A4 portrait


def test_pdf_text_contains_codes_and_chinese(sheet):
    specs, pdf = sheet
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    texts = [page.extract_text() for page in reader.pages]
    full = "\n".join(texts)
    for spec in specs:
        assert spec.code in full
        assert spec.facility in full and spec.outlet in full
    # each page holds exactly its own 8 (or 4) codes
    for p, text in enumerate(texts):
        on_page = {s.code for s in specs[p * 8 : (p + 1) * 8]}
        assert {c for c in re.findall(r"TZ\d{8}", text)} == on_page
        assert "碳箱码 活性炭吸附箱" in text
        for part in LEGEND_TEXT.split("  "):
            assert part in text  # legend on every page
    assert "温岭市东方机电有限公司" in full


def test_pdf_is_compressed_and_qr_is_vector(sheet):
    _, pdf = sheet
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    page = reader.pages[0]
    assert "/FlateDecode" in str(page.get_object()["/Contents"].get_object().get("/Filter"))
    content = page.get_contents().get_data()
    assert content.count(b" re") > 8 * 100  # QR modules drawn as rectangles
    assert b"/Subtype /Image" not in pdf  # no raster images anywhere
    assert b"FontFile2" in pdf and b"STSong-Light" not in pdf  # the CJK font is embedded
    # every stream (pages, forms, font subset, its ToUnicode map) Flate-compressed, in binary
    assert pdf.count(b"/FlateDecode") == pdf.count(b"endstream") > 3
    assert b"ASCII85Decode" not in pdf


def test_pdf_every_colour_and_long_texts():
    specs = [
        LabelSpec(
            code="TZ-LONG-CODE-0123456789-ABCDEFG",
            url=label_url(BASE, "TZ-LONG-CODE-0123456789-ABCDEFG", 1, SECRET),
            colour=c,
            enterprise="浙江省台州市椒江区某某环保科技股份有限公司活性炭吸附脱附催化燃烧一体化车间" * 2,
            facility="1号治理设施",
            outlet="",
        )
        for c in COLOURS
    ]
    pdf = label_sheet_pdf(specs)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    # too long for one line even at the minimum size: split, never truncated
    assert "TZ-LONG-CODE-" in text and "0123456789-ABCDEFG" in text
    assert "1号治理设施" in text
    assert "…" in text  # over-long enterprise name is ellipsized


def test_pdf_rejects_bad_input():
    with pytest.raises(ValueError):
        label_sheet_pdf([])
    with pytest.raises(ValueError):
        LabelSpec(code="X", url="https://x/c/X", colour="blue", enterprise="", facility="", outlet="")
    with pytest.raises(TypeError):
        label_sheet_pdf(["not a spec"])  # type: ignore[list-item]


def test_pdf_restores_reportlab_config():
    from reportlab import rl_config

    before = rl_config.useA85
    label_sheet_pdf(_specs(1))
    assert rl_config.useA85 == before


def test_pdf_rendered_qr_codes_decode(sheet, tmp_path: Path):
    """Rasterise page 1 with poppler and decode the vector QR codes."""
    if shutil.which("pdftoppm") is None:
        from tests.support import service_missing

        service_missing("pdftoppm (Debian's poppler-utils)", "not installed")
    specs, pdf = sheet
    src = tmp_path / "sheet.pdf"
    src.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(src), str(tmp_path / "page")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    (png,) = sorted(tmp_path.glob("page*.png"))
    decoded = _decode_all(Image.open(png))
    assert sorted(decoded) == sorted(s.url for s in specs[:8])


def test_box_codes_always_print_on_one_line():
    """Regression: a code whose width made _fit shrink it exactly to the column was split in two
    by floating-point rounding (found by the HTTP test with a random code, 23-XAWGNC)."""
    import random

    from app.boxes import codes as box_codes

    rnd = random.Random(7)
    sample = ["23-XAWGNC"] + [
        box_codes.make_code("331023", "".join(rnd.choice(box_codes.ALPHABET) for _ in range(5))) for _ in range(60)
    ]
    specs = [
        LabelSpec(code=c, url="http://x/c/" + c, colour="green", enterprise="天台", facility="TA001", outlet="DA001")
        for c in sample
    ]
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(label_sheet_pdf(specs))).pages)
    lines = set(text.splitlines())
    assert all(c in lines for c in sample), [c for c in sample if c not in lines]
