"""No English in the Chinese pages, no Chinese in the English ones.

Every demo role signs in and walks every page of the product in ``?lang=zh`` and ``?lang=en``;
the visible text (tags, scripts and styles stripped; placeholders, titles and alt texts kept) of
a Chinese page may hold no English word but codes, units and the names in ``ALLOWED_LATIN``, and
an English page no Han character but the demo's own data (names of places, organisations,
people, wastes: values from the database, not the templates')."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import sqlalchemy as sa
from sqlalchemy import select

from app.boxes.models import Box
from app.demo.data import PASSWORD, USERS, load_demo
from app.extensions import db
from app.ledger.models import Manifest

NOW = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)
#: Latin words a Chinese page may show: codes, units, formats, proper names and the language switch.
ALLOWED_LATIN = {
    "API",
    "PDF",
    "CSV",
    "XLSX",
    "QR",
    "JSON",
    "URL",
    "ID",
    "USCC",
    "VOCs",
    "VOC",
    "English",
    "mg",
    "kg",
    "g",
    "m",
    "h",
    "t",
    "Pa",
    "ppm",
    "min",
    "d",
    "s",
    "N",
    "RH",
    "pH",
    "HW",
    "HJ",
    "GB",
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
    # The receiver's and the regeneration plant's pages (app/web/receiving.py, regeneration_pages.py).
    from app.regeneration.models import RegenerationBatch

    in_transit = session.scalars(select(Manifest).where(Manifest.status == "in_transit").limit(1)).all()
    batches = session.scalars(select(RegenerationBatch).order_by(RegenerationBatch.id).limit(1)).all()
    return [
        "/",
        "/boxes",
        f"/boxes/{box.code}",
        f"/c/{box.code}",
        "/ledger",
        "/stock",
        "/manifests",
        f"/manifests/{manifest.number}",
        f"/m/{manifest.number}",
        "/statistics",
        "/statistics?kind=quarter&year=2026&quarter=1",
        "/receiving",
        *(f"/receiving/{m.number}" for m in in_transit),
        "/regeneration",
        "/regeneration/new",
        *(f"/regeneration/{b.id}" for b in batches),
        "/index",
        "/revisions",
        "/oversight/boxes/red",
        "/oversight/boxes/yellow?sort=saturation",
        "/oversight/manifests/overdue",
        "/oversight/manifests/discrepant",
        "/oversight/manifests/rejected",
        "/oversight/anomalies",
        "/no-such-page",
        "/boxes/NO-SUCH-BOX",
    ]


def test_every_page_speaks_one_language(app):
    # Its own app context: requests must not share one (Flask-Babel keeps the locale on ``g``).
    with app.app_context():
        load_demo(db.session, now=NOW)
        han_values, latin_values = _data_values(db.session)
        pages = _pages(db.session)
        # The index's source document is a proper name, as printed (its title from the rule file).
        from app.index import services as index_services

        source = index_services.definition(db.session).source
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


# ---------------------------------------------------------------- the single leaks, one by one


def _box(app) -> str:
    from tests import factories

    with app.app_context():
        world = factories.World.build()
        box = factories.box(world.enterprise, world.service)
        db.session.commit()
        return box.code


def test_error_pages_speak_the_page_language(app):
    client = app.test_client()
    zh = visible_text(client.get("/no-such-page?lang=zh", headers=BROWSER).get_data(as_text=True))
    assert "404 未找到" in zh and "您访问的页面不存在" in zh
    assert "Not Found" not in zh and "requested URL" not in zh
    en = visible_text(client.get("/no-such-page?lang=en", headers=BROWSER).get_data(as_text=True))
    assert "404 Not found" in en and "The page you asked for does not exist" in en and "未找到" not in en
    # The API keeps its English problem documents.
    api = client.get("/api/v1/no-such-thing")
    assert api.mimetype == "application/problem+json" and api.get_json()["title"] == "Not Found"


def test_login_prompt_is_translated(app):
    zh = app.test_client().get("/ledger?lang=zh", headers=BROWSER, follow_redirects=True)
    assert "请登录后访问此页面。" in visible_text(zh.get_data(as_text=True))
    assert "Please log in" not in zh.get_data(as_text=True)
    en = app.test_client().get("/ledger?lang=en", headers=BROWSER, follow_redirects=True)
    assert "Please sign in to open this page." in visible_text(en.get_data(as_text=True))


def test_length_errors_on_the_replacement_form_are_translated(app):
    from tests import factories

    code = _box(app)
    client = app.test_client()
    client.post("/login", data={"username": "svc", "password": factories.PASSWORD})
    form = {"mass_kg": "2000", "iodine_mg_g": "900", "supplier_name": "某" * 201}
    zh = client.post(f"/c/{code}?lang=zh", data=form)
    assert zh.status_code == 422
    text = visible_text(zh.get_data(as_text=True))
    assert "不能超过 200 个字符" in text and "Longer than" not in text
    en = client.post(f"/c/{code}?lang=en", data=form)
    assert "at most 200 characters" in visible_text(en.get_data(as_text=True))


def test_validation_messages_and_errors_for_pages(app):
    from app.common.errors import Forbidden, InvalidInput
    from app.translations import localise_error, localise_message

    with app.test_request_context("/?lang=zh"):
        assert localise_message("Longer than maximum length 200.") == "不能超过 200 个字符"
        assert localise_message("Length must be between 1 and 60.") == "长度应为 1–60 个字符"
        assert (
            localise_message("Must be greater than or equal to 0 and less than or equal to 24.") == "应在 0 到 24 之间"
        )
        assert localise_message("Missing data for required field.") == "必填"
        assert localise_message("something the service said") == "something the service said"
        bad = InvalidInput(
            "The pickup has invalid fields.", errors={"driver_name": ["Length must be between 1 and 60."]}
        )
        assert localise_error(bad) == "驾驶员：长度应为 1–60 个字符"
        assert localise_error(Forbidden("需要平台运维权限 (platform operators only)")) == "需要平台运维权限"
        assert localise_error(Forbidden("only English here")) == "操作未能完成，请检查后重试。"
    with app.test_request_context("/?lang=en"):
        assert localise_message("Longer than maximum length 200.") == "at most 200 characters"
        assert localise_error(Forbidden("需要平台运维权限 (platform operators only)")) == "platform operators only"


def test_colour_history_names_the_rules(app):
    from app.web.names import rule_reason  # the pages' helper: the app's rule texts

    with app.test_request_context("/?lang=zh"):
        assert (
            rule_reason({"code": "iodine_below_minimum", "level": "red", "observed": 500, "threshold": 800})
            == "活性炭碘值 500 mg/g 低于下限 800 mg/g"
        )
        assert rule_reason({"code": "no_active_fill", "level": "grey"}) == "尚未装填活性炭"
        assert rule_reason({"code": "gone_from_the_file", "level": "red"}) == "gone_from_the_file"
    with app.test_request_context("/?lang=en"):
        assert (
            rule_reason({"code": "iodine_below_minimum", "level": "red", "observed": 500, "threshold": 800})
            == "Carbon iodine value 500 mg/g is below the minimum 800 mg/g"
        )
        assert rule_reason({"code": "no_active_fill", "level": "grey"}) == "no carbon filled yet"
