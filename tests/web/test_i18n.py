"""Pages speak Simplified Chinese by default and English on request (?lang=en, cookie,
Accept-Language). Every ``_()`` string of the pages has an English translation, compiled."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests import factories

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "app" / "translations" / "en" / "LC_MESSAGES"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}


def _extracted() -> dict[str, list[str]]:
    """msgid → where it is used, extracted with the project's babel.cfg (templates and Python)."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        ids = message if isinstance(message, tuple) else (message,)
        for msgid in ids:
            if msgid:
                found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


@pytest.fixture(scope="module")
def po():
    with open(CATALOGUE / "messages.po", "rb") as fh:
        return read_po(fh, locale="en")


def test_extraction_finds_the_page_strings():
    found = _extracted()
    templates = {m for m, where in found.items() if any(w.startswith("app/templates/") for w in where)}
    # The extraction itself works: the scan page's own strings are among them.
    assert {
        "原因",
        "登记换炭",
        "警告：此二维码签名无效，可能是伪造标签。已记录本次扫码，请联系企业或监管部门。",
    } <= templates
    assert "换炭记录已保存" in found  # app/web/views.py


def test_every_page_string_has_an_english_translation(po):
    missing = []
    for msgid, where in sorted(_extracted().items()):
        message = po.get(msgid)
        if message is None or not message.string or "fuzzy" in message.flags:
            missing.append(f"{msgid!r} ({', '.join(where[:2])})")
    assert not missing, "untranslated (see app/translations/README.md):\n" + "\n".join(missing)


def test_translations_keep_their_placeholders(po):
    for message in po:
        if not message.id:
            continue
        assert set(re.findall(r"%\(\w+\)s", message.id)) == set(re.findall(r"%\(\w+\)s", message.string)), message.id
        assert not re.search(r"[\u4e00-\u9fff]", message.string), f"Chinese left in the English of {message.id!r}"


def test_compiled_catalogue_matches_the_po(po):
    with open(CATALOGUE / "messages.mo", "rb") as fh:
        mo = read_mo(fh)
    compiled = {m.id: m.string for m in mo if m.id}
    source = {m.id: m.string for m in po if m.id}
    stale = sorted(k for k in source if compiled.get(k) != source[k])
    assert not stale, f"messages.mo is stale, run pybabel compile: {stale[:5]}"


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def _box_code(app) -> str:
    """A registered box. Built in its own app context: requests must not share one (Flask-Babel
    keeps the chosen locale on ``g``, which lives as long as the app context)."""
    from app.extensions import db

    with app.app_context():
        world = factories.World.build()
        box = factories.box(world.enterprise, world.service)
        db.session.commit()
        return box.code


def test_scan_page_languages(app, client):
    class box:
        code = _box_code(app)

    # Chinese by default.
    page = client.get(f"/c/{box.code}")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.get_data(as_text=True)
    assert "原因" in _text(page) and "灰码" in _text(page) and "Why" not in _text(page)
    assert "lang=" not in (page.headers.get("Set-Cookie") or "")

    # ?lang=en: English, remembered in the lang cookie.
    page = client.get(f"/c/{box.code}?lang=en")
    text = _text(page)
    assert '<html lang="en">' in page.get_data(as_text=True)
    assert "Why" in text and "Grey" in text and "no carbon filled yet" in text
    assert "Enterprise or carbon-service staff: sign in to record a replacement" in text
    assert "原因" not in text
    cookie = page.headers.get("Set-Cookie") or ""
    assert cookie.startswith("lang=en;") and "Max-Age=" in cookie, cookie
    # The language link keeps the page's other arguments and points back to Chinese.
    assert f'href="/c/{box.code}?lang=zh"' in page.get_data(as_text=True)

    # The cookie alone now chooses English; ?lang=zh switches back.
    assert "Why" in _text(client.get(f"/c/{box.code}"))
    back = client.get(f"/c/{box.code}?lang=zh")
    assert "原因" in _text(back) and (back.headers.get("Set-Cookie") or "").startswith("lang=zh;")

    # A browser asking for English (no cookie) gets English.
    fresh = app.test_client()
    assert "Why" in _text(fresh.get(f"/c/{box.code}", headers={"Accept-Language": "en-GB,en;q=0.9"}))
    assert "原因" in _text(fresh.get(f"/c/{box.code}", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}))


def test_form_errors_follow_the_language(app, client):
    class box:
        code = _box_code(app)

    client.post("/login", data={"username": "svc", "password": factories.PASSWORD})
    first = client.post(f"/c/{box.code}", data={"mass_kg": "2000", "iodine_mg_g": "900"})
    assert first.status_code == 302
    zh = client.post(f"/c/{box.code}", data={"mass_kg": "2000", "removed_waste_kg": "0"})
    assert zh.status_code == 422
    assert "碘值 (mg/g)：必填" in _text(zh) and "称重的废炭量 (kg)：必须大于 0" in _text(zh)
    en = client.post(f"/c/{box.code}?lang=en", data={"mass_kg": "2000", "iodine_mg_g": "900"})
    assert en.status_code == 422
    assert "Waste carbon removed, weighed (kg): a replacement needs the weighed waste carbon removed" in _text(en)
