"""Errors as ``application/problem+json`` (RFC 9457), with per-field messages.

Services raise :class:`DomainError` subclasses (no Flask imports there); the handlers
registered here turn them, and every HTTP error, into problem documents for the API and
into a readable page for the HTML views.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from marshmallow import INCLUDE, Schema, ValidationError, fields
from sqlalchemy.exc import DataError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

PROBLEM_MIME = "application/problem+json"

# Seconds a client should wait before retrying while the database is unreachable.
RETRY_AFTER_S = 5
# No JSON document the API accepts nests deeper than a handful of levels; 32 leaves ample room.
MAX_JSON_DEPTH = 32
# API writes that need no bearer token: getting one.
PUBLIC_API_WRITES = frozenset({"/api/v1/auth/token"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Sensor batches: NaN in a reading is rejected item by item there (the batch is still answered),
# so only their depth is checked here.
NAN_PER_ITEM = frozenset({"/api/v1/readings"})


class DomainError(Exception):
    """A business rule refused the request. ``status`` is the HTTP status it maps to."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, errors: dict[str, Any] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or {}
        self.extra = extra


class InvalidInput(DomainError):
    status = 422
    title = "Invalid input"

    @classmethod
    def field(cls, name: str, message: str) -> InvalidInput:
        return cls(f"{name}: {message}", errors={name: [message]})


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class Conflict(DomainError):
    """An illegal state change (e.g. receiving a manifest that is not in transit)."""

    status = 409
    title = "Conflict"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"


class ProblemSchema(Schema):
    """An error as served: ``application/problem+json`` (RFC 9457). Problems may carry extension
    members (e.g. ``place``, ``box_code``), as RFC 9457 §3.2 allows."""

    class Meta:
        unknown = INCLUDE

    type = fields.Str(metadata={"example": "about:blank"})
    title = fields.Str(required=True)
    status = fields.Int(required=True)
    detail = fields.Str()
    instance = fields.Str(metadata={"description": "the path of the request"})
    errors = fields.Dict(keys=fields.Str(), metadata={"description": "per-field messages"})


def document_problems(api) -> None:
    """Document every error response of the OpenAPI as it is served: problem+json, not the
    generic ``application/json`` error schema flask-smorest assumes. Call after ``api.init_app``."""
    api.spec.components.schema("Problem", schema=ProblemSchema)
    ref = {"$ref": "#/components/schemas/Problem"}
    for response in api.spec.components.responses_lazy.values():
        content = response.get("content")
        if content and "application/json" in content:
            response["content"] = {PROBLEM_MIME: {"schema": ref}}
        if response.get("description") == "Method Not Allowed":
            response["headers"] = {"Allow": {"schema": {"type": "string"}, "description": "the methods the path takes"}}
        if response.get("description") == "Service Unavailable":
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}


def problem(status: int, title: str, detail: str | None = None, errors: dict | None = None, **extra: Any):
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    body["instance"] = request.path
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_MIME
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


_JSON_STRING = re.compile(rb'"[^"]*"')  # strings once escaped quotes and backslashes are gone
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')


def json_body_problem(raw: bytes, max_depth: int = MAX_JSON_DEPTH, nan: bool = True) -> str | None:
    """Why a JSON body is refused before it is parsed (too deep, NaN/Infinity), or None.

    Only C-speed byte operations, so a batch of 5,000 readings costs a few milliseconds: escaped
    backslashes and quotes are dropped, then everything but quotes and brackets; strings go
    (brackets inside them do not nest); then each pass removes the innermost ``[]``/``{}`` pairs,
    so a document of depth d is empty after d passes. A body still unreduced after ``max_depth``
    passes is too deep (or malformed, which the parser would refuse anyway)."""
    if not raw:
        return None
    special = nan and (b"NaN" in raw or b"Infinity" in raw)
    if not special and raw.count(b"[") + raw.count(b"{") <= max_depth:
        return None  # cannot nest deeper than it has brackets (the common small body)
    cleaned = raw.replace(b"\\\\", b"").replace(b'\\"', b"") if b"\\" in raw else raw
    if special and re.search(rb"NaN|Infinity", _JSON_STRING.sub(b'""', cleaned)):
        return "NaN and Infinity are not JSON (RFC 8259)"
    kept = cleaned.translate(None, _NOT_STRUCTURE).replace(b'""', b"")  # adjacent quotes hold nothing
    if b'"' in kept:
        kept = b"".join(kept.split(b'"')[::2])  # strings that hold brackets
    for _ in range(max_depth):
        if not kept:
            return None
        reduced = kept.replace(b"[]", b"").replace(b"{}", b"")
        if reduced == kept:
            return "the JSON document is malformed"
        kept = reduced
    if kept:
        return f"the JSON document nests deeper than {max_depth} levels"
    return None


def register_request_guards(app: Flask) -> None:
    """Checks every request passes before a view reads its input.

    * API writes need a bearer token (README): a write under /api/v1 is authenticated before its
      body is validated, so an anonymous write answers 401, never 422 (only getting a token is public).
    * A JSON body nesting deeper than :data:`MAX_JSON_DEPTH`, or carrying NaN/Infinity, answers
      400 before any parser recurses into it (10,000 levels would exhaust the parser's stack).
    """

    @app.before_request
    def _guards():
        if request.routing_exception is not None:
            return None  # 404 / 405 answer as they are
        if (
            request.method in WRITE_METHODS
            and request.path.startswith("/api/v1/")
            and request.path not in PUBLIC_API_WRITES
        ):
            from app.common.auth import current_principal

            current_principal()  # raises Unauthorized (401) without a valid bearer token
        if request.method in WRITE_METHODS and request.is_json:
            length = request.content_length
            limit = app.config.get("MAX_CONTENT_LENGTH")
            if limit and length is not None and length > limit:
                return None  # werkzeug answers 413 when the body is read
            why = json_body_problem(request.get_data(cache=True), nan=request.path not in NAN_PER_ITEM)
            if why:
                return problem(400, "Bad Request", why)
        return None


def wants_html() -> bool:
    if request.path.startswith("/api/") or request.path in {"/openapi.json", "/healthz", "/readyz"}:
        return False
    best = request.accept_mimetypes.best_match(["text/html", "application/json", PROBLEM_MIME])
    return best == "text/html"


def _page(status: int, title: str, detail: str | None):
    try:
        return render_template("error.html", status=status, title=title, detail=detail, generic=True), status
    except Exception:  # the error page must never fail in turn
        current_app.logger.exception("error page failed")
        return f"{status} {title}: {detail or ''}", status


def _messages_of_webargs(err: HTTPException) -> dict:
    data = getattr(err, "data", None) or {}
    messages = data.get("messages") or {}
    # webargs nests by location ({"json": {"field": [...]}}); the field is what users need.
    flat: dict[str, Any] = {}
    for location, found in messages.items():
        if isinstance(found, dict):
            flat.update(found)
        else:
            flat[location] = found
    return flat


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(err: DomainError):
        if wants_html():
            return _page(err.status, err.title, err.detail)
        return problem(err.status, err.title, err.detail, err.errors, **err.extra)

    @app.errorhandler(ValidationError)
    def _validation(err: ValidationError):
        messages = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
        return problem(422, "Invalid input", "The request has invalid fields.", messages)

    @app.errorhandler(OverflowError)
    @app.errorhandler(DataError)
    def _out_of_range(err: Exception):
        # Safety net behind the schemas' own ranges: a number the database cannot hold (an id of
        # 10^30, say) is the caller's mistake, not a server error. Nothing was written.
        from app.extensions import db

        db.session.rollback()
        app.logger.info("value out of range: %s", err)
        return problem(
            422,
            "Invalid input",
            "A value is out of the range the service can store.",
            {"_schema": ["a number is out of range"]},
        )

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(DisconnectionError)
    @app.errorhandler(PoolTimeout)
    def _database_unavailable(err: Exception):
        # The database is down or unreachable: the request is not the caller's fault and not a
        # bug to trace. One line in the log; the pool reconnects (pre-ping) once it is back.
        from app.extensions import db

        with contextlib.suppress(Exception):  # the connection is gone; the session is discarded at teardown
            db.session.rollback()
        first_line = (str(getattr(err, "orig", None) or err).strip().splitlines() or [type(err).__name__])[0]
        app.logger.warning("database unavailable: %s %s: %s", request.method, request.path, first_line[:300])
        if wants_html():
            body, status = _page(503, "Service Unavailable", "数据库暂时不可用，请稍后重试。")
            return body, status, {"Retry-After": str(RETRY_AFTER_S)}
        response = problem(503, "Service Unavailable", "The database is temporarily unavailable; retry later.")
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        status = err.code or 500
        title = err.name
        detail = err.description
        errors: dict = {}
        if status == 422:
            errors = _messages_of_webargs(err)
            title, detail = "Invalid input", "The request has invalid fields."
        elif status == 400 and getattr(err, "data", None):
            errors = _messages_of_webargs(err)
        # 405 answers name the methods the path takes (RFC 9110 §15.5.6), as werkzeug's own do.
        allow_header = ", ".join(getattr(err, "valid_methods", None) or ()) if status == 405 else ""
        if wants_html():
            body, status = _page(status, title, detail)
            return body, status, ({"Allow": allow_header} if allow_header else {})
        response = problem(status, title, detail, errors)
        if allow_header:
            response.headers["Allow"] = allow_header
        return response

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        if isinstance(err, HTTPException):
            return _http(err)
        app.logger.exception("unhandled error")
        if app.config.get("PROPAGATE_EXCEPTIONS") and app.testing:
            raise err
        if wants_html():
            return _page(500, "Internal Server Error", "服务器内部错误，已记录。")
        return problem(500, "Internal Server Error", "An unexpected error was logged.")
