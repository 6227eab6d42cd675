"""Security headers on every response, the reverse-proxy fix, and the sign-in throttle's limiter.

Every answer (pages, API, problem documents, static files, /docs) carries:

* ``Content-Security-Policy``: scripts, styles, fonts and images from this origin only, no inline
  script or style (the templates have none: widths are classes of app.css), no plugins,
  ``frame-ancestors 'none'`` (with ``X-Frame-Options: DENY`` for old browsers), forms posting
  to this origin only. Swagger UI (``/docs``) is a vendored page with one inline script of its
  own: its CSP admits that script by its SHA-256 and the inline styles Swagger UI's React sets;
* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: strict-origin-when-cross-origin``;
* ``Strict-Transport-Security`` only when the request came over TLS (directly, or through a
  proxy that says so: ``PROXY_FIX_X_PROTO=1``). Over plain HTTP the header means nothing and would
  only pin a development host.

Behind a reverse proxy, ``PROXY_FIX_X_FOR`` / ``PROXY_FIX_X_PROTO`` / ``PROXY_FIX_X_HOST`` (the
number of proxies to trust, 0 by default) wrap the app in werkzeug's ProxyFix, so that
``remote_addr`` (the sign-in throttle) and ``is_secure`` (HSTS) are the client's.
"""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Flask, Response, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


def _docs_csp(body: bytes) -> str:
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(body)
    )
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def _headers(response: Response) -> Response:
    headers = response.headers
    if (
        request.path == current_app.config.get("OPENAPI_SWAGGER_UI_PATH")
        and response.mimetype == "text/html"
        and not response.direct_passthrough
    ):
        headers["Content-Security-Policy"] = _docs_csp(response.get_data())
    else:
        headers.setdefault("Content-Security-Policy", CSP)
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    if request.is_secure:
        headers["Strict-Transport-Security"] = HSTS
    return response


def init_app(app: Flask) -> None:
    proxies = {
        name: int(app.config.get(f"PROXY_FIX_{name.upper()}", 0) or 0) for name in ("x_for", "x_proto", "x_host")
    }
    if any(proxies.values()):
        app.wsgi_app = ProxyFix(app.wsgi_app, **proxies)  # type: ignore[method-assign]
    # First in the list, so it runs last (Flask runs after_request functions in reverse): the
    # headers also go on the answer the transaction boundary substitutes when a commit fails.
    app.after_request_funcs.setdefault(None, []).insert(0, _headers)
    from app.accounts import throttle

    throttle.init_app(app)
