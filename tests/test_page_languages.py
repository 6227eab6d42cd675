"""No English in the Chinese pages, no Chinese in the English ones.

Every demo role signs in and walks every page of the product in ``?lang=zh`` and ``?lang=en``;
the visible text (tags, scripts and styles stripped; placeholders, titles and alt texts kept) of
a Chinese page may hold no English word but codes, units and the names in ``ALLOWED_LATIN``, and
an English page no Han character but the demo's own data (names of places, organisations,
people, wastes: values from the database, not the templates')."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from html.parser import HTMLParser

import sqlalchemy as sa
from sqlalchemy import select

from app.boxes.models import Box
from app.demo.data import PASSWORD, USERS, load_demo
from app.extensions import db
from app.ledger.models import Manifest

NOW = datetime(2025, 9, 30, 2, 0, tzinfo=timezone.utc)
#: Latin words a Chinese page may show: codes, units, formats, proper names and the language switch.
ALLOWED_LATIN = {
    "API", "PDF", "CSV", "XLSX", "QR", "JSON", "URL", "ID", "USCC", "VOCs", "VOC", "English",
    "mg", "kg", "g", "m", "h", "t", "Pa", "ppm", "min", "d", "s", "N", "RH", "pH", "HW", "HJ", "GB",
}
#: Han text an English page may show besides the data: the link back to the Chinese page.
ALLOWED_HAN = ["中文"]
_CODE = re.compile(r"[\w.-]*\d[\w.-]*|[A-Z]{1,3}")  # HW49, R1, PM2.5, 23-XXXXXX, 900-039-49, TA001, A, DA
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_'.-]*")
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in {"script", "style", "template"}:
            self._skip += 1
        for name, value in attrs:
            if value and name in {"placeholder", "title", "alt", "aria-label"}:
                self.parts.append(value)
            if value and name == "value" and dict(attrs).get("type") in {"submit", "button"}:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if tag in {"script", "style", "template"} and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def english_words(text: str, allowed: set[str]) -> list[str]:
    found = []
    for word in _WORD.findall(text):
        word = word.strip("'.-_")
        if not word or word in allowed or _CODE.fullmatch(word):
            continue
        if re.search(r"[A-Za-z]", word):
            found.append(word)
    return found


def han_left(text: str, data_values: list[str]) -> list[str]:
    for value in data_values:  # longest first
        text = text.replace(value, " ")
    return _HAN.findall(text)


def _data_values(session) -> tuple[list[str], set[str]]:
    """Every string the demo stored (names, addresses, wastes…) with Han in it, longest first;
    and its Latin words (usernames, plates, licence numbers) that a Chinese page may show."""
    han: set[str] = set()
    latin: set[str] = set()
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, sa.String)]
        if not columns:
            continue
        for row in session.execute(sa.select(*columns)).all():
            for value in row:
                if not isinstance(value, str) or not value:
                    continue
                if _HAN.search(value):
                    han.add(value)
                    han.update(part for part in re.split(r"[\s,，;；/、]+", value) if _HAN.search(part))
                if len(value) <= 60:
                    latin.update(w.strip("'.-_") for w in _WORD.findall(value))
    return sorted(han, key=len, reverse=True), latin


def _pages(session) -> list[str]:
    box = session.scalars(select(Box).order_by(Box.code)).first()
    manifest = session.scalars(select(Manifest).order_by(Manifest.number)).first()
    return ["/", "/boxes", f"/boxes/{box.code}", f"/c/{box.code}", "/ledger", "/stock", "/manifests",
            f"/manifests/{manifest.number}", f"/m/{manifest.number}", "/statistics", "/index",
            "/no-such-page", "/boxes/NO-SUCH-BOX"]


def test_every_page_speaks_one_language(app):
    # Its own app context: requests must not share one (Flask-Babel keeps the locale on ``g``).
    with app.app_context():
        load_demo(db.session, now=NOW)
        han_values, latin_values = _data_values(db.session)
        pages = _pages(db.session)
        # The index's source document is a proper name, as printed (its title from the rule file).
        from app.index import services as index_services

        source = index_services.definition().source
        han_values = sorted({*han_values, source, *source.split(), *ALLOWED_HAN}, key=len, reverse=True)
        db.session.remove()
    allowed = ALLOWED_LATIN | latin_values | {"NO-SUCH-BOX"}  # the code asked for, echoed by the 404 page
    problems: list[str] = []

    def check(client, who: str, path: str) -> None:
        for lang in ("zh", "en"):
            sep = "&" if "?" in path else "?"
            response = client.get(f"{path}{sep}lang={lang}", follow_redirects=True, headers=BROWSER)
            assert response.status_code in {200, 403, 404}, (who, path, response.status_code)
            text = visible_text(response.get_data(as_text=True))
            if lang == "zh":
                words = english_words(text, allowed)
                if words:
                    problems.append(f"{who} {path} zh: English {sorted(set(words))[:12]}")
            else:
                left = han_left(text, han_values)
                if left:
                    problems.append(f"{who} {path} en: Chinese {sorted(set(left))[:12]}")

    anonymous = app.test_client()
    for path in ("/login", "/", "/ledger", f"/m/{pages[8].split('/')[-1]}", pages[3], "/no-such-page"):
        check(anonymous, "anonymous", path)
    for username in ["admin", *(user[0] for user in USERS)]:
        client = app.test_client()
        r = client.post("/login", data={"username": username, "password": PASSWORD})
        assert r.status_code == 302, username
        for path in pages:
            check(client, username, path)
    assert not problems, "\n".join(problems)
