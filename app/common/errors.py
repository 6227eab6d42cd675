"""Errors as ``application/problem+json`` (RFC 9457), with per-field messages.

Services raise :class:`DomainError` subclasses (no Flask imports there); the handlers
registered here turn them, and every HTTP error, into problem documents for the API and
into a readable page for the HTML views.
"""
from __future__ import annotations

from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from marshmallow import ValidationError
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException

PROBLEM_MIME = "application/problem+json"


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
    def field(cls, name: str, message: str) -> "InvalidInput":
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
    for location, fields in messages.items():
        if isinstance(fields, dict):
            flat.update(fields)
        else:
            flat[location] = fields
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
        return problem(422, "Invalid input", "A value is out of the range the service can store.",
                       {"_schema": ["a number is out of range"]})

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
        if wants_html():
            return _page(status, title, detail)
        return problem(status, title, detail, errors)

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
