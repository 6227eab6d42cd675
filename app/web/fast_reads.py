"""The two hottest reads answered before Flask's dispatch: a label's scan page and a box's JSON.

An anonymous ``GET``/``HEAD /c/<code>`` (what a label's QR code opens) and ``GET``/``HEAD
/api/v1/boxes/<code>`` with a person's bearer token this process has already accepted are most
of the traffic, and for nearly every box the answer is stored (app.boxes.lean) and often
already rendered (app.boxes.cache). Through Flask, such a request paid for the request context,
the session, URL matching, three before- and five after-request hooks and the teardowns: as
much as the read itself. :class:`FastReads` wraps the app's WSGI callable and answers these two
from one statement (the box, its stored evaluation and, for the API, the caller's token) and
the cached body, rendering in a request context only when the body is not cached.

It answers only what it can answer exactly as the ordinary path would (same status, body and
headers: a test compares both for many boxes) and hands everything else to Flask unchanged:
any cookie but ``lang`` (a session, a remember cookie), a ``?lang=`` that Flask would remember
in a cookie, a forged or superseded label (recorded as a scan problem), a box whose evaluation
must be renewed, a box the caller may not see, a token unknown to this process, a query on the
API, another method, a database that cannot be read this way. The response headers the app's
hooks add to these answers are added here the same way (app.common.security's, ``Vary:
Cookie`` from the session Flask-Login reads on every request).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.wrappers import Request, Response

from app.accounts.services import hash_token
from app.boxes import cache, codes, lean, services
from app.boxes.services.stored import rules_digest
from app.boxes.views import lean_box_body
from app.common import auth
from app.common.fastread import engine_key
from app.common.security import CSP, HSTS
from app.common.timeutil import utcnow
from app.common.wiring import EXTENSION_KEY as WIRING_KEY
from app.extensions import db
from app.web.views import label_state, lean_scan_page

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from sqlalchemy.engine import Engine

EXTENSION_KEY = "tanxiang.fast_reads"
SCAN_PREFIX = "/c/"
BOX_PREFIX = "/api/v1/boxes/"
_LANGUAGES = ("zh", "en")


class FastReads:
    """The app's WSGI callable with the two reads answered first (see the module docstring).
    Its settings are the app's configuration when it was made; ``served`` and ``passed`` count
    what it answered and what it handed on (for tests and benchmarks)."""

    def __init__(self, app: Flask, ordinary: WSGIApplication) -> None:
        self.app = app
        self.ordinary = ordinary
        config = app.config
        self.secret: str = config["SECRET_KEY"]
        # Flask-Login refreshing its cookie on every request would make each answer set it.
        self.enabled = bool(config.get("FAST_READS", True)) and not config.get("REMEMBER_COOKIE_REFRESH_EACH_REQUEST")
        self.served = 0
        self.passed = 0
        self._engine: Engine | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        response = self._answer(environ) if self.enabled else None
        if response is None:
            self.passed += 1
            return self.ordinary(environ, start_response)
        self.served += 1
        return response(environ, start_response)

    def _answer(self, environ: WSGIEnvironment) -> Response | None:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or environ.get("SCRIPT_NAME"):
            return None
        path: str = environ.get("PATH_INFO", "")
        if path.startswith(SCAN_PREFIX):
            segment, answer = path[len(SCAN_PREFIX) :], self._scan
        elif path.startswith(BOX_PREFIX):
            segment, answer = path[len(BOX_PREFIX) :], self._box
        else:
            return None
        if not segment or "/" in segment or not segment.isascii():
            return None  # another route, or none; PATH_INFO is Latin-1: Flask decodes it (UTF-8)
        code = codes.normalise(segment)
        if code is None:
            return None
        try:
            return answer(environ, Request(environ, shallow=True), code)
        except Exception:  # never worse than the ordinary path: it answers, errors included
            self.app.logger.exception("fast read of %s failed; answered by the ordinary path", path)
            return None

    def _engine_of_app(self) -> Engine:
        if self._engine is None:
            with self.app.app_context():
                self._engine = db.engine
        return self._engine

    def _scan(self, environ: WSGIEnvironment, request: Request, code: str) -> Response | None:
        cookies = request.cookies
        if any(name != "lang" for name in cookies):
            return None  # a session or remember cookie: the visitor may be signed in
        args = request.args
        chosen = args.get("lang")
        if chosen in _LANGUAGES and cookies.get("lang") != chosen:
            return None  # app.web.views._remember_language sets the cookie
        locale = _locale(request)
        engine = self._engine_of_app()
        wiring = self.app.extensions[WIRING_KEY]
        rules = wiring.colour_rules()
        now = utcnow()
        row = lean.read_stored(engine, code, now, rules_digest(rules), with_last_replacement=True)
        if row is None:
            return None
        state = label_state(self.secret, row["code"], row["label_version"], args.get("v"), args.get("s"))
        if state not in ("ok", "typed"):
            return None  # recorded as a scan problem by the ordinary path
        key = (locale, wiring.rules_dir, state, request.query_string)  # app.web.views._scan_cache_key
        entry = cache.scan_page_cache.get(engine, key, code, row["revision"], now)
        if entry is not None:
            html = entry.value
        else:
            read = lean.from_row(row, now, rules, with_last_replacement=True)
            with self.app.request_context(environ):
                html = lean_scan_page(read, state, now)
        response = Response(html, mimetype="text/html")
        response.headers["Cache-Control"] = "private, no-cache"
        return self._finish(response, request)

    def _box(self, environ: WSGIEnvironment, request: Request, code: str) -> Response | None:
        if environ.get("QUERY_STRING") or environ.get("HTTP_COOKIE"):
            return None
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        engine = self._engine_of_app()
        token_hash = _known_user_token(engine, token)
        if token_hash is None:
            return None
        wiring = self.app.extensions[WIRING_KEY]
        rules = wiring.colour_rules()
        now = utcnow()
        caller = auth.LEAN_CALLER
        row = lean.read_stored(
            engine, code, now, rules_digest(rules), caller=caller, caller_params={"token_hash": token_hash}
        )
        if row is None:
            return None
        viewer = auth.visibility_from_row(lean.caller_of(row, caller))
        if viewer is None or not services.can_see(viewer, **lean.visibility_of(row)):
            return None
        scope = (wiring.rules_dir,)  # app.boxes.views.box_detail
        entry = cache.box_json_cache.get(engine, scope, code, row["revision"], now)
        if entry is not None:
            body = entry.value
        else:
            read = lean.from_row(row, now, rules, caller=caller)
            with self.app.request_context(environ):
                body = lean_box_body(read, scope, now)
        response = Response(body, mimetype="application/json")
        response.headers["Cache-Control"] = "private, no-cache"
        return self._finish(response, request)

    def _finish(self, response: Response, request: Request) -> Response:
        """The ETag and 304 of app.boxes.views._json_answer / app.web.views._scan_answer, then
        the headers the app's after-request hooks add (app.common.security, the session's Vary)."""
        response.add_etag()
        if "HTTP_IF_NONE_MATCH" in request.environ:
            response.make_conditional(request)
        headers = response.headers
        headers["Content-Security-Policy"] = CSP
        headers["X-Frame-Options"] = "DENY"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        if request.is_secure:
            headers["Strict-Transport-Security"] = HSTS
        response.vary.add("Cookie")
        return response


def _locale(request: Request) -> str:
    """app.select_locale for this request (the query's ``lang``, the cookie, Accept-Language)."""
    chosen = request.args.get("lang") or request.cookies.get("lang")
    if chosen in _LANGUAGES:
        return chosen
    languages = request.accept_languages
    return languages.best_match(["zh", "en"], default="zh") if languages else "zh"


def _known_user_token(engine: Engine, token: str) -> str | None:
    """app.common.auth.known_user_token without a request: the token's hash when it is a
    person's token this process has accepted (its cache, which the ordinary path fills)."""
    token_hash = hash_token(token)
    hit = auth._token_cache.get((engine_key(engine), token_hash))
    if hit is None or hit.expires <= time.monotonic() or hit.token_kind != "user":
        return None
    return token_hash


def install(app: Flask) -> None:
    """Wrap ``app.wsgi_app`` (before ProxyFix wraps it in turn, so the environ seen here is the
    client's: scheme, address)."""
    fast = FastReads(app, app.wsgi_app)
    app.extensions[EXTENSION_KEY] = fast
    app.wsgi_app = fast  # type: ignore[method-assign]
