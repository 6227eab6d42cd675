"""The one transaction boundary of API and page requests, and of CLI commands.

Services only ``flush``; they never commit. The request decides, here, once:

* a write (POST, PUT, PATCH, DELETE) that answers < 400 commits, once, after the view returned;
* a write that answers >= 400, or raises, rolls back: a refused request leaves nothing behind;
* a commit that fails becomes a problem document (409 for a conflict with stored data, 503
  otherwise), never a traceback;
* a write carrying an idempotency key stores its first result with the same commit
  (app/common/idempotency.py), and answers it again for the same key;
* a read (GET, HEAD, OPTIONS) never commits. What it flushed is dropped when the request's
  session is removed. The single exception is :func:`commit_read_effects`.

CLI commands use :func:`cli_transaction`. The MQTT subscriber (app/telemetry/mqtt.py) and the demo
loaders (app/demo) are workers outside any request: they keep their own commits, one per batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from flask import Flask, Response, current_app, g, render_template, request
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from app.common.wiring import wiring_of

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _db_session() -> Session:
    from app.extensions import db

    return db.session()  # the current session behind the request-scoped proxy


def commit_read_effects(session: Session) -> None:
    """The one place where a read (GET) commits: what time alone changed, seen by a read.

    Reading a box re-evaluates its colour. When time alone has changed it (saturation crossed
    80% overnight, a replacement became overdue), the new colour, its ``ColourChange`` entry with
    the moment it happened, and the bumped revision must be stored when first seen: otherwise
    every later reader sees a stale colour in the lists, the history and the statistics, and the
    read cache keeps serving the old page. The scan page also stores the scan of a forged or
    superseded label (a ``BoxEvent`` for the enterprise and the regulator).

    Nothing else a read does is ever committed. A failure here does not fail the read: the
    change is rolled back and stored by the next read that sees it.
    """
    try:
        _before_commit(session)
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        current_app.logger.warning("a read could not store what time changed: %s", exc)


def rollback_request(session: Session) -> None:
    """A write refused by a rule but answered with a redirect (< 400, a page form): drop what it
    flushed now, so that the boundary's commit stores nothing of it (nor its idempotency key)."""
    from app.common import idempotency

    session.rollback()
    idempotency.forget()


def held_until_commit() -> ExitStack:
    """The request's stack of resources to hold until the boundary has committed or rolled back
    (telemetry ingest's SQLite writer lock: released only after its batch is stored)."""
    stack = g.get("_tx_held")
    if stack is None:
        stack = g._tx_held = ExitStack()
    return stack


def _release_held() -> None:
    stack = g.pop("_tx_held", None)
    if stack is not None:
        stack.close()


def _commit_failed(exc: SQLAlchemyError) -> Response:
    from app.common.errors import problem, wants_html

    if isinstance(exc, IntegrityError):
        status, title = 409, "Conflict"
        detail = "保存失败：与已存数据冲突，请刷新后重试 (the change conflicts with stored data; reload and retry)"
    else:
        status, title = 503, "Service Unavailable"
        detail = "数据库暂时无法保存，请稍后重试 (the database could not store the change; retry later)"
    if wants_html():
        try:
            response = current_app.make_response(
                (render_template("error.html", status=status, title=title, detail=detail), status)
            )
        except Exception:  # the error page must never fail in turn
            response = current_app.make_response((f"{status} {title}: {detail}", status))
    else:
        response = problem(status, title, detail)
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response


def _boundary(response: Response) -> Response:
    try:
        if request.method in SAFE_METHODS:
            return response  # a read never commits (see commit_read_effects for the one exception)
        session = _db_session()
        if response.status_code >= 400:
            session.rollback()
            return response
        from app.common import idempotency

        try:
            idempotency.remember(session, response)  # the first result of a keyed action, in its transaction
            _before_commit(session)
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            if isinstance(exc, IntegrityError):
                # An identical request with the same key committed first: answer its result.
                replayed = idempotency.answer_after_conflict(session)
                if replayed is not None:
                    return replayed
            current_app.logger.warning("commit failed for %s %s: %s", request.method, request.path, exc)
            return _commit_failed(exc)
        return response
    finally:
        _release_held()


def _before_commit(session: Session) -> None:
    """The app's hooks before a request's commit (the audit trail binds who and which interface)."""
    for hook in wiring_of(session).before_request_commit:
        hook(session)


def _teardown(exc: BaseException | None) -> None:
    # A view that raised past the error handlers (tests propagate exceptions) wrote nothing.
    if exc is not None:
        _db_session().rollback()
    _release_held()


def init_app(app: Flask) -> None:
    app.after_request(_boundary)
    app.teardown_request(_teardown)


def init_idempotency(app: Flask) -> None:
    """Idempotency keys of writes (app/common/idempotency.py): the stored first result is answered
    before the view runs; :func:`_boundary` stores it with the commit. Installed after the
    request's other checks (CSRF, the API's bearer token), so that a replay passes them first."""
    from app.common import idempotency

    idempotency.init_app(app)


@contextmanager
def cli_transaction(session: Session | None = None) -> Iterator[Session]:
    """A CLI command's unit of work: commits when the block ends, rolls back when it raises."""
    session = session if session is not None else _db_session()
    for hook in wiring_of(session).cli_transaction_begins:
        hook(session)  # e.g. the audit trail's interface, "cli"
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
