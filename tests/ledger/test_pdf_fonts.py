"""The PDFs embed their CJK font and cut nothing off: the manifest PDF wraps long names,
packaging and addresses inside their cells; the label sheets embed the same font."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pypdf

from app import fonts as app_fonts
from app.accounts.models import Organization
from app.fonts import FONT_FILE
from app.labels.pdf import LabelSpec, label_sheet_pdf
from app.ledger.models import Manifest, ManifestEvent, ManifestLine
from app.ledger.pdf import COLUMNS, MARGIN, manifest_pdf

NOW = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)
STANDARD_14 = {
    "/Helvetica",
    "/Helvetica-Bold",
    "/Helvetica-Oblique",
    "/Helvetica-BoldOblique",
    "/Times-Roman",
    "/Courier",
    "/Symbol",
    "/ZapfDingbats",
}
LONG_NAME = ("废活性炭（含吸附的挥发性有机物，来自喷涂、烘干、印刷及医化园区反应釜尾气处理设施）" * 6)[
    :190
] + "ABCDEFGHIJ"
LONG_PACKAGING = ("吨袋 9 只（内衬防渗塑料袋，外覆防雨布，每袋约一百二十千克，贴危险废物标签）" * 6)[:195] + "12345"
LONG_ADDRESS = ("浙江省台州市天台县经济开发区始丰街道赤城路一百八十八号综合楼" * 5)[:150]


def _manifest(lines: int = 1) -> Manifest:
    def org(name: str, address: str | None = None) -> Organization:
        return Organization(name=name, uscc="91331023MA2ABCDE1X", address=address)

    m = Manifest(
        number="20253310000123",
        origin="electronic",
        status="in_transit",
        receiver_licence="浙危废经第1号",
        route="天台县—温岭市",
        vehicle_plate="浙J12345",
        driver_name="王师傅",
        reject_reason="",
        discrepant=False,
        overdue=False,
        late_entry=False,
        receipt_due_at=NOW + timedelta(days=3),
    )
    m.consignor = org("天台县恒力橡胶有限公司", LONG_ADDRESS)
    m.carrier = org("台州市危废运输有限公司")
    m.receiver = org("浙江天台以废治废再生炭科技有限公司", "温岭市")
    m.lines = [
        ManifestLine(
            line_no=i + 1,
            waste_code="900-039-49",
            waste_name=LONG_NAME,
            category="HW49",
            physical_form="solid",
            hazard="T",
            packaging=LONG_PACKAGING,
            quantity_kg=1200.5,
            received_kg=None,
            method_code="R15",
        )
        for i in range(lines)
    ]
    m.events = [
        ManifestEvent(
            action="submit", to_status="submitted", at=NOW, actor="qiye", organization_name="天台县恒力橡胶有限公司"
        )
    ]
    return m


def _fonts(reader: pypdf.PdfReader) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for page in reader.pages:
        fonts = page["/Resources"].get("/Font", {})
        for ref in fonts.values():
            font = ref.get_object()
            found[str(font["/BaseFont"])] = font
        for xobj in (page["/Resources"].get("/XObject") or {}).values():  # label forms
            for ref in ((xobj.get_object().get("/Resources") or {}).get("/Font") or {}).values():
                font = ref.get_object()
                found[str(font["/BaseFont"])] = font
    return found


def _assert_cjk_embedded(pdf: bytes) -> None:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    fonts = _fonts(reader)
    assert b"STSong-Light" not in pdf
    cjk = {name: f for name, f in fonts.items() if name.endswith("+WenQuanYiMicroHei")}
    assert cjk, fonts.keys()
    for name, font in cjk.items():
        descriptor = font["/FontDescriptor"].get_object()
        assert "/FontFile2" in descriptor, name  # the TrueType program is in the file
        assert len(descriptor["/FontFile2"].get_object().get_data()) > 1000
    # Everything else is one of the standard 14 fonts every viewer has.
    assert set(fonts) - set(cjk) <= STANDARD_14, set(fonts)


def _collapse(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_font_file_is_small_and_licensed():
    assert 200_000 < FONT_FILE.stat().st_size < 3_000_000
    licence = FONT_FILE.with_name("LICENSE-wqy-microhei.txt").read_text(encoding="utf-8")
    assert "Apache License" in licence and "WenQuanYi" in licence


def test_manifest_pdf_embeds_the_font_and_keeps_long_texts_whole():
    pdf = manifest_pdf(_manifest(), "http://testserver.local/m/20253310000123", NOW)
    _assert_cjk_embedded(pdf)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = _collapse("".join(page.extract_text() for page in reader.pages))
    assert len(LONG_NAME) == len(LONG_PACKAGING) == 200
    for whole in (
        LONG_NAME,
        LONG_PACKAGING,
        LONG_ADDRESS,
        "危险废物转移联单",
        "天台县恒力橡胶有限公司",
        "http://testserver.local/m/20253310000123",
        "生态环境部令第23号",
    ):
        assert _collapse(whole) in text, whole[:20]


def _positions(page: pypdf.PageObject) -> list[tuple[float, float, float, str]]:
    """(x, y, font size, text) of every text run drawn on the page."""
    found: list[tuple[float, float, float, str]] = []

    def visit(text, cm, tm, font_dict, font_size):
        if text.strip():
            found.append((tm[4] * cm[0] + cm[4], tm[5] * cm[3] + cm[5], font_size * tm[0] * cm[0], text))

    page.extract_text(visitor_text=visit)
    return found


def test_manifest_pdf_text_stays_in_its_column_and_on_the_page():
    pdf = manifest_pdf(_manifest(lines=4), "http://testserver.local/m/20253310000123", NOW)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 2  # four 200-character lines do not fit one page: the table goes on
    width, height = (float(v) for v in reader.pages[0].mediabox[2:])
    from reportlab.pdfbase import pdfmetrics

    from app.fonts import cjk_font

    font = cjk_font()
    name_left = MARGIN + sum(w for _, w in COLUMNS[:2]) * 2.8346
    name_right = name_left + COLUMNS[2][1] * 2.8346
    in_name_column = 0
    for page in reader.pages:
        for x, y, size, text in _positions(page):
            assert x >= 0 and 0 <= y <= height, (x, y, text)
            line = text.strip()
            assert x + pdfmetrics.stringWidth(line, font, size) <= width - MARGIN + 1, (x, text)
            if name_left - 1 <= x < name_right and line and line[0] in LONG_NAME and "废物名称" not in line:
                in_name_column += 1
                assert x + pdfmetrics.stringWidth(line, font, size) <= name_right + 0.5, (x, line)
    assert in_name_column >= 4 * 5  # each 200-character name wraps onto several lines of its cell


def test_manifest_pdf_renders_the_wrapped_cells(tmp_path):
    """poppler (without any CJK font of its own on the path) draws the page: ink in the name cell
    well below the header, i.e. the wrapped name was drawn, not cut."""
    if shutil.which("pdftoppm") is None:
        from tests.conftest import service_missing

        service_missing("pdftoppm (Debian's poppler-utils)", "not installed")
    from PIL import Image

    pdf = tmp_path / "m.pdf"
    pdf.write_bytes(manifest_pdf(_manifest(), "http://x/m/1", NOW))
    subprocess.run(
        ["pdftoppm", "-r", "50", "-gray", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "p")],
        check=True,
        capture_output=True,
    )
    img = Image.open(next(tmp_path.glob("p*.pgm")))
    scale = 50 / 72
    x0 = int((MARGIN + sum(w for _, w in COLUMNS[:2]) * 2.8346) * scale) + 2
    x1 = int((MARGIN + sum(w for _, w in COLUMNS[:3]) * 2.8346) * scale) - 2
    dark_rows = {y for y in range(img.height) for x in range(x0, x1) if img.getpixel((x, y)) < 128}
    assert len(dark_rows) > 60, len(dark_rows)  # many text rows in the 废物名称 column
    # Nothing outside the page margins but the page itself.
    margin_px = int(MARGIN * scale) - 3
    for y in range(img.height):
        for x in list(range(0, margin_px)) + list(range(img.width - margin_px, img.width)):
            assert img.getpixel((x, y)) > 200, (x, y)


def test_label_sheet_embeds_the_font():
    specs = [
        LabelSpec(
            code=f"TZ{i:08d}",
            url=f"http://x/c/TZ{i:08d}",
            colour="green",
            enterprise="天台县恒力橡胶有限公司",
            facility="TA001",
            outlet="DA001",
        )
        for i in range(3)
    ]
    pdf = label_sheet_pdf(specs)
    _assert_cjk_embedded(pdf)
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "天台县恒力橡胶有限公司" in text and "碳箱码" in text and "TZ00000002" in text


def test_the_font_comes_from_the_package_and_covers_gb2312():
    """No system font at run time: the registered font is the package's file, and it has a glyph
    for every GB 2312 character and the symbols the PDFs print."""
    from reportlab.pdfbase import pdfmetrics

    from app.fonts import cjk_font

    face = pdfmetrics.getFont(cjk_font()).face
    assert Path(face.filename).resolve() == FONT_FILE.resolve()
    assert FONT_FILE.parent == Path(app_fonts.__file__).parent
    gb2312 = set()
    for hi in range(0xB0, 0xF8):  # the 6,763 hanzi of GB 2312
        for lo in range(0xA1, 0xFF):
            with contextlib.suppress(UnicodeDecodeError):
                gb2312.add(bytes([hi, lo]).decode("gb2312"))
    assert len(gb2312) >= 6763
    missing = [ch for ch in gb2312 | set("（）：；，。、—…·×°³—“”《》") if ord(ch) not in face.charToGlyph]
    assert not missing, missing[:20]
