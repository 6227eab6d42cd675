"""What a job kind is, and what an export is: the two things the wiring registers.

A kind is a name, the marshmallow schema of its params, who may ask for it (``authorise``, at
request time, raising the service errors a request would), and the work (``run``), given a
:class:`JobRun`. Kinds are plugged in by :func:`app.common.wiring.build_wiring` (``job_kinds``,
``job_exports``); nothing registers itself by being imported.

Every kind must be idempotent: an attempt may run again after a failure (retries) or after its
worker died, so it must give the same result when repeated (the sweep re-evaluates what is still
due; an export rewrites its file from scratch).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Protocol

from marshmallow import Schema
from sqlalchemy.orm import Session

if TYPE_CHECKING:  # pragma: no cover
    from app.accounts.services import Principal
    from app.jobs.models import Job


class JobRun(Protocol):
    """One attempt of a job, as its kind sees it (implemented by :mod:`app.jobs.runner`)."""

    session: Session
    job: Job
    principal: Principal | None
    now: datetime  # the attempt's start: what "due" means for the sweep, the export's "now"

    def step(self) -> AbstractContextManager[Session]:
        """A unit of work that commits when the block ends (with the progress reported in it)."""
        ...

    def report(self, done: int, total: int | None = None) -> None:
        """Progress so far; stored with the current step's commit (or on its own, outside one)."""
        ...

    def result_file(self) -> AbstractContextManager[IO[bytes]]:
        """A file to write the result into; it becomes the job's result only if the job succeeds."""
        ...

    def finish_with_file(self, ascii_name: str, utf8_name: str, mime: str) -> None: ...

    def finish_with_summary(self, summary: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class JobKind:
    name: str
    # load_params(session, params) -> the params as stored; raises marshmallow's ValidationError
    # with per-field messages (see :func:`schema_loader` for a kind whose params are one schema).
    load_params: Callable[[Session, dict[str, Any]], dict[str, Any]]
    # authorise(session, principal, params): raise Forbidden / NotFound / InvalidInput, else None.
    authorise: Callable[[Session, Principal, dict[str, Any]], None]
    run: Callable[[JobRun, dict[str, Any]], None]
    title_zh: str = ""
    title_en: str = ""


@dataclass(frozen=True)
class ExportMeta:
    """What an export wrote: the names to download it as, and its media type."""

    ascii_name: str
    utf8_name: str
    mime: str


@dataclass(frozen=True)
class ExportKind:
    """One export the ``export`` job kind can run, looked up by ``params.export`` in the wiring."""

    name: str
    params_schema: type[Schema]  # the params besides ``export`` and ``format``
    authorise: Callable[[Session, Principal, dict[str, Any]], None]
    # write(session, principal, params, fmt, out, report) -> ExportMeta; ``report(done, total)``.
    write: Callable[[Session, Principal, dict[str, Any], str, IO[bytes], Callable[[int, int | None], None]], ExportMeta]
    formats: tuple[str, ...] = ("csv", "xlsx")
    title_zh: str = ""
    title_en: str = ""


def schema_loader(schema: type[Schema]) -> Callable[[Session, dict[str, Any]], dict[str, Any]]:
    """The ``load_params`` of a kind whose params are one marshmallow schema."""

    def load(_session: Session, params: dict[str, Any]) -> dict[str, Any]:
        loaded: dict[str, Any] = schema().load(params)
        return loaded

    return load
