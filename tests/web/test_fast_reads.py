"""The fast path (app/web/fast_reads.py) answers the scan page and the box JSON exactly as Flask's
ordinary path does (status, every header in order, body bytes), and hands on what it may not
answer: compared for many boxes, languages, label URLs, methods and callers, with the read cache
empty and filled, on both backends. The clock is frozen, so both paths show the same moment."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.test import Client
from werkzeug.wrappers import Response

from app.accounts.models import ApiToken
from app.accounts.services import hash_token
from app.boxes import cache
from app.common import timeutil
from app.extensions import db
from app.labels.signing import sign_label
from app.web.fast_reads import EXTENSION_KEY, FastReads
from tests.boxes.builders import register


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Iterator[Clock]:
    """Every ``app`` module's ``utcnow`` (the one source of "now") at one fixed moment."""
    fake = Clock()
    real = timeutil.utcnow
    for name, module in list(sys.modules.items()):
        if (name == "app" or name.startswith("app.")) and getattr(module, "utcnow", None) is real:
            monkeypatch.setattr(module, "utcnow", fake)
    yield fake


@pytest.fixture
def boxes(api, clock) -> list[dict]:
    """Boxes of varied states: new (no fill), filled, replaced with waste weighed (red, with a
    last replacement), stopped, and one of the other county's enterprise."""
    made = [register(api), register(api), register(api), register(api), register(api, as_="other")]
    fills = [
        (1, 3, {"mass_kg": 2000, "iodine_mg_g": 900}),
        (2, 20, {"mass_kg": 2000, "iodine_mg_g": 900}),
        (2, 2, {"mass_kg": 1800, "iodine_mg_g": 700, "removed_waste_kg": 2100}),
        (3, 1, {"mass_kg": 2000, "iodine_mg_g": 900}),
    ]
    for index, days_ago, body in fills:
        body = {**body, "filled_at": (clock.now - timedelta(days=days_ago)).isoformat()}
        r = api.post(f"/api/v1/boxes/{made[index]['code']}/fills", body, as_="ent")
        assert r.status_code == 201, r.get_json()
    assert api.post(f"/api/v1/boxes/{made[3]['code']}/status", {"status": "stopped"}, as_="ent").status_code == 200
    return made


def _fast(app) -> FastReads:
    return app.extensions[EXTENSION_KEY]


_EXPIRES = re.compile(r"Expires=[^;]*;")


def _answer(wsgi, method: str, path: str, headers: dict, base_url: str = "http://localhost/") -> tuple:
    response = Client(wsgi, Response, use_cookies=False).open(path, method=method, headers=headers, base_url=base_url)
    # A conditional answer carries the wall clock's Date (werkzeug's make_conditional), a cookie
    # its Expires: their presence is compared, not the second they were made in.
    listed = [
        (name, "<date>" if name == "Date" else _EXPIRES.sub("Expires=<date>;", value))
        for name, value in response.headers.items()
    ]
    return response.status, listed, response.get_data()


def _compare(app, method: str, path: str, headers: dict | None = None) -> tuple[tuple, int]:
    """The answer of both paths, each with the read cache empty and filled by the other; the
    number of the four the fast path answered itself."""
    headers = dict(headers or {})
    fast = _fast(app)
    served = fast.served
    answers = []
    for first, second in ((fast.ordinary, app.wsgi_app), (app.wsgi_app, fast.ordinary)):
        cache.scan_page_cache.clear()
        cache.box_json_cache.clear()
        answers.append(_answer(first, method, path, headers))
        answers.append(_answer(second, method, path, headers))
    ordinary, fast_after, fast_first, ordinary_after = answers
    assert fast_after == ordinary, path
    assert fast_first == ordinary, path
    assert ordinary_after == ordinary, path
    return ordinary, fast.served - served


def _label(app, code: str, version: int) -> str:
    return f"/c/{code}?v={version}&s={sign_label(app.config['SECRET_KEY'], code, version)}"


def _etag(answer: tuple) -> str:
    return dict(answer[1])["ETag"]


def test_scan_pages_are_the_ordinary_paths(app, api, boxes):
    for box in boxes:
        code = box["code"]
        signed, served = _compare(app, "GET", _label(app, code, 1))
        assert signed[0] == "200 OK" and served == 2  # the fast path answered both times it was asked
        for language in ("en", "zh-CN,zh;q=0.9", "fr", "en;q=0.3, zh;q=0.8", ""):
            page, served = _compare(app, "GET", f"/c/{code}", {"Accept-Language": language})
            assert served == 2 and page[0] == "200 OK"
        assert 'lang="en"' in _compare(app, "GET", f"/c/{code}", {"Accept-Language": "en"})[0][2].decode()
        head, served = _compare(app, "HEAD", _label(app, code, 1))
        assert served == 2 and head[2] == b"" and dict(head[1])["ETag"] == _etag(signed)
        not_modified, served = _compare(app, "GET", _label(app, code, 1), {"If-None-Match": _etag(signed)})
        assert served == 2 and not_modified[0] == "304 NOT MODIFIED" and not_modified[2] == b""
        changed, served = _compare(app, "GET", _label(app, code, 1), {"If-None-Match": '"other"'})
        assert served == 2 and changed[2] == signed[2] and _etag(changed) == _etag(signed)
        remembered, served = _compare(app, "GET", f"/c/{code}?lang=en", {"Cookie": "lang=en"})
        assert served == 2 and remembered[0] == "200 OK"


def test_scans_the_fast_path_hands_on(app, api, boxes):
    code = boxes[2]["code"]
    forged, served = _compare(app, "GET", f"/c/{code}?v=1&s=BADBADBADBADBADB")
    assert served == 0 and 'data-label-state="forged"' in forged[2].decode()
    assert api.post(f"/api/v1/boxes/{code}/label-reprints", as_="ent").status_code == 200
    superseded, served = _compare(app, "GET", _label(app, code, 1))
    assert served == 0 and 'data-label-state="superseded"' in superseded[2].decode()
    assert _compare(app, "GET", _label(app, code, 2))[1] == 2  # the new label
    new_language, served = _compare(app, "GET", f"/c/{code}?lang=en")
    assert served == 0 and "lang=en" in dict(new_language[1])["Set-Cookie"]  # remembered by Flask
    signed_in, served = _compare(app, "GET", f"/c/{code}", {"Cookie": "session=forged.value"})
    assert served == 0 and signed_in[0] == "200 OK"
    spaced, served = _compare(app, "GET", "/c/%C2%A0" + code)  # a no-break space (UTF-8) before the code
    assert served == 0 and spaced[0] == "200 OK"  # Flask decodes and strips it; the fast path hands on
    for unknown in ("ZZ-NOTACODE", "10-AAAAAAA", f"{code}/more", "", f"{code}%C3%A9"):
        missing, served = _compare(app, "GET", f"/c/{unknown}")
        assert served == 0 and missing[0] in ("404 NOT FOUND", "308 PERMANENT REDIRECT")
    options, served = _compare(app, "OPTIONS", f"/c/{code}")
    assert served == 0 and options[0] == "200 OK"


def test_box_json_is_the_ordinary_paths(app, api, boxes):
    token = api.token("reg_city")
    auth = {"Authorization": f"Bearer {token}"}
    assert api.get(f"/api/v1/boxes/{boxes[0]['code']}", as_="reg_city").status_code == 200  # token accepted
    for box in boxes:
        path = f"/api/v1/boxes/{box['code']}"
        body, served = _compare(app, "GET", path, auth)
        assert body[0] == "200 OK" and served == 2
        assert _compare(app, "GET", path.lower(), auth)[0] == body  # a code typed in lower case
        assert _compare(app, "GET", path, {**auth, "Accept-Language": "en"}) == (body, 2)
        head, served = _compare(app, "HEAD", path, auth)
        assert served == 2 and head[2] == b""
        not_modified, served = _compare(app, "GET", path, {**auth, "If-None-Match": _etag(body)})
        assert served == 2 and not_modified[0] == "304 NOT MODIFIED"
        queried, served = _compare(app, "GET", path + "?lang=en", auth)
        assert served == 0 and queried[2] == body[2]


def test_box_json_the_fast_path_hands_on(app, api, boxes, world):
    own, other = boxes[0]["code"], boxes[4]["code"]
    api.get(f"/api/v1/boxes/{own}", as_="ent")  # the token is accepted once by the ordinary path
    auth = {"Authorization": f"Bearer {api.token('ent')}"}
    assert _compare(app, "GET", f"/api/v1/boxes/{own}", auth)[1] == 2
    hidden, served = _compare(app, "GET", f"/api/v1/boxes/{other}", auth)
    assert served == 0 and hidden[0] == "404 NOT FOUND"  # another county's enterprise's box
    unknown, served = _compare(app, "GET", "/api/v1/boxes/10-AAAAAAA", auth)
    assert served == 0 and unknown[0] == "404 NOT FOUND"
    stranger, served = _compare(app, "GET", f"/api/v1/boxes/{own}", {"Authorization": "Bearer not-a-token"})
    assert served == 0 and stranger[0] == "401 UNAUTHORIZED"
    anonymous, served = _compare(app, "GET", f"/api/v1/boxes/{own}")
    assert served == 0 and anonymous[0] == "401 UNAUTHORIZED"
    # Revoked by another process: this one still knows the token, the statement sees the revocation.
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(api.token("ent"))))
    row.revoked_at = timeutil.utcnow()
    db.session.commit()
    revoked, served = _compare(app, "GET", f"/api/v1/boxes/{own}", auth)
    assert served == 0 and revoked[0] == "401 UNAUTHORIZED"


def test_a_write_elsewhere_is_seen_at_once(app, api, boxes):
    """The cached page is the box's revision's: a fill recorded through another worker (here
    directly in the database's revision) is shown by the next fast answer."""
    code = boxes[1]["code"]
    first, served = _compare(app, "GET", f"/c/{code}")
    assert served == 2
    refill = api.post(
        f"/api/v1/boxes/{code}/fills", {"mass_kg": 1500, "iodine_mg_g": 950, "removed_waste_kg": 1800}, as_="ent"
    )
    assert refill.status_code == 201, refill.get_json()
    fast = _fast(app)
    served = fast.served
    after = _answer(app.wsgi_app, "GET", f"/c/{code}", {})
    assert fast.served == served + 1 and after[2] != first[2] and "1500" in after[2].decode()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    index=st.integers(0, 4),
    language=st.sampled_from(["", "en", "zh", "en-GB,en;q=0.9", "de", "zh-TW;q=0.2,en;q=0.1", "*"]),
    label=st.sampled_from(["signed", "typed", "forged", "lang"]),
    method=st.sampled_from(["GET", "HEAD"]),
)
def test_any_scan_is_the_ordinary_paths(app, api, boxes, index, language, label, method):
    code = boxes[index]["code"]
    path = {
        "signed": _label(app, code, 1),
        "typed": f"/c/{code}",
        "forged": f"/c/{code}?v=1&s=aaaaaaaaaaaaaaaa",
        "lang": f"/c/{code}?v=1&lang=zh",
    }[label]
    answer, served = _compare(app, method, path, {"Accept-Language": language} if language else {})
    assert served == (2 if label in ("signed", "typed") else 0)
    assert answer[0] == "200 OK" and (answer[2] == b"") == (method == "HEAD")


def test_over_tls_as_the_ordinary_path(app, api, boxes):
    """Over HTTPS (directly, or through ProxyFix, which wraps the fast path) both add HSTS."""
    fast = _fast(app)
    code = boxes[2]["code"]
    ordinary = _answer(fast.ordinary, "GET", _label(app, code, 1), {}, "https://localhost/")
    served = fast.served
    assert _answer(app.wsgi_app, "GET", _label(app, code, 1), {}, "https://localhost/") == ordinary
    assert fast.served == served + 1 and "Strict-Transport-Security" in dict(ordinary[1])


def test_disabled_by_configuration(app):
    fast = FastReads(type("App", (), {"config": {"SECRET_KEY": "k", "FAST_READS": False}})(), app.wsgi_app)  # type: ignore[arg-type]
    assert not fast.enabled
