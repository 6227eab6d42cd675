"""Labels end to end: the QR image decodes to a signed URL that opens the scan page."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import zxingcpp
from PIL import Image
from pypdf import PdfReader

from tests.boxes.builders import register
from tests.support import service_missing


def decode(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1
    return results[0].text


def test_qr_round_trip_opens_scan_page(api, client):
    box = register(api)
    api.post(f"/api/v1/boxes/{box['code']}/fills", {"mass_kg": 2000, "iodine_mg_g": 900}, as_="ent")
    r = api.get(f"/api/v1/boxes/{box['code']}/qr.png", as_="ent")
    assert r.status_code == 200 and r.mimetype == "image/png"
    url = decode(r.data)
    parts = urlsplit(url)
    assert parts.scheme + "://" + parts.netloc == "http://testserver.local"
    assert parts.path == f"/c/{box['code']}" and "v=1" in parts.query and "s=" in parts.query
    page = client.get(parts.path + "?" + parts.query)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert box["code"] in html and 'data-colour="green"' in html
    assert "forged" not in html and "superseded" not in html


def test_forged_and_superseded_labels_are_shown_and_recorded(api, client):
    code = register(api)["code"]
    url = decode(api.get(f"/api/v1/boxes/{code}/qr.png", as_="ent").data)
    query = urlsplit(url).query
    forged = client.get(f"/c/{code}?v=1&s=AAAAAAAAAAAAAAAA")
    assert 'data-label-state="forged"' in forged.get_data(as_text=True)
    # Reprint: the old label is superseded, the new one is fine.
    assert api.post(f"/api/v1/boxes/{code}/label-reprints", as_="ent").get_json()["label_version"] == 2
    old = client.get(f"/c/{code}?{query}")
    assert 'data-label-state="superseded"' in old.get_data(as_text=True)
    new_url = decode(api.get(f"/api/v1/boxes/{code}/qr.png", as_="ent").data)
    assert "v=2" in new_url
    fresh = client.get(urlsplit(new_url).path + "?" + urlsplit(new_url).query).get_data(as_text=True)
    assert "data-label-state" not in fresh
    kinds = [e["kind"] for e in api.get(f"/api/v1/boxes/{code}/history", as_="ent").get_json()["events"]]
    assert kinds.count("label_forged_scan") == 1 and kinds.count("label_superseded_scan") == 1


def test_qr_svg_and_label_sheet(api):
    codes = [register(api, facility_code=f"TA00{i}")["code"] for i in range(1, 4)]
    svg = api.get(f"/api/v1/boxes/{codes[0]}/qr.svg", as_="ent")
    assert svg.status_code == 200 and svg.data.lstrip().startswith(b"<")
    pdf = api.get("/api/v1/labels.pdf?codes=" + ",".join(codes), as_="ent")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages)
    for code in codes:
        assert code in text
    assert "红" in text and "绿" in text  # the colour legend in Chinese
    assert "扫码看颜色" in text  # neutral frames by default: the colour lives behind the QR code
    current = api.get("/api/v1/labels.pdf?frame=current&codes=" + codes[0], as_="ent")
    current_text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(current.data)).pages)
    assert "灰码" in current_text and "扫码看颜色" not in current_text
    bad = api.get("/api/v1/labels.pdf?codes=23-NOPE", as_="ent")
    assert bad.status_code == 422 and "codes" in bad.get_json()["errors"]
    other = register(api, as_="other")["code"]
    assert api.get(f"/api/v1/labels.pdf?codes={other}", as_="ent").status_code == 404
    assert api.get(f"/api/v1/labels.pdf?codes={codes[0]},{other}", as_="ent").status_code == 404


def test_printed_sheet_scans_to_each_box_scan_page(api, client, tmp_path: Path):
    """The sheet as printed: rasterised by poppler at 150 dpi, every label's vector QR code decodes
    to its own box's signed URL, and that URL opens the box's scan page (not a forged label)."""
    if shutil.which("pdftoppm") is None:
        service_missing("pdftoppm (Debian's poppler-utils)", "not installed")
    codes = [register(api, facility_code=f"TA{i:03d}")["code"] for i in range(1, 11)]  # 2 pages
    pdf = api.get("/api/v1/labels.pdf?frame=current&codes=" + ",".join(codes), as_="ent")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    (tmp_path / "sheet.pdf").write_bytes(pdf.data)
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", str(tmp_path / "sheet.pdf"), str(tmp_path / "page")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) == 2
    urls = [r.text for png in pages for r in zxingcpp.read_barcodes(Image.open(png))]
    assert sorted(urlsplit(u).path for u in urls) == sorted(f"/c/{code}" for code in codes)
    for url in urls:
        parts = urlsplit(url)
        html = client.get(parts.path + "?" + parts.query).get_data(as_text=True)
        assert parts.path.removeprefix("/c/") in html and "data-label-state" not in html


def test_scan_page_replacement_form_for_staff_only(api, app, world):
    code = register(api, service_org_id=world.service.id)["code"]
    api.post(f"/api/v1/boxes/{code}/fills", {"mass_kg": 2000, "iodine_mg_g": 900}, as_="ent")
    anonymous = app.test_client()
    html = anonymous.get(f"/c/{code}").get_data(as_text=True)
    assert "fill-form" not in html and "登录" in html
    assert anonymous.post(f"/c/{code}", data={"mass_kg": "1", "iodine_mg_g": "900"}).status_code == 403
    for who in ("ent_staff", "svc"):
        c = app.test_client()
        assert c.post("/login", data={"username": who, "password": "correct-horse-9"}).status_code == 302
        assert "fill-form" in c.get(f"/c/{code}").get_data(as_text=True)
    bad = c.post(f"/c/{code}", data={"mass_kg": "2000", "iodine_mg_g": "900"})
    assert bad.status_code == 422 and 'data-field="removed_waste_kg"' in bad.get_data(as_text=True)
    ok = c.post(f"/c/{code}", data={"mass_kg": "2000", "iodine_mg_g": "880", "removed_waste_kg": "2150"})
    assert ok.status_code == 302
    fills = api.get(f"/api/v1/boxes/{code}/history", as_="ent").get_json()["fills"]
    assert [f["kind"] for f in fills] == ["initial", "replacement"] and fills[1]["removed_waste_kg"] == 2150
    regulator = app.test_client()
    regulator.post("/login", data={"username": "reg_tt", "password": "correct-horse-9"})
    assert "fill-form" not in regulator.get(f"/c/{code}").get_data(as_text=True)
    assert anonymous.get("/c/23-NOPE00").status_code == 404


def test_login_page_and_wrong_password(app, world):
    c = app.test_client()
    assert "登录" in c.get("/login").get_data(as_text=True)
    r = c.post("/login", data={"username": "ent", "password": "nope"})
    assert r.status_code == 401 and "用户名或密码错误" in r.get_data(as_text=True)
    assert c.get("/boxes").status_code == 302
