"""Fixtures of the jobs tests: waiting for the in-process thread, and kinds made for a test."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Iterator
from types import MappingProxyType

import pytest

from app.common.wiring import EXTENSION_KEY
from app.extensions import db
from app.jobs import dispatch
from app.jobs.kinds import ExportKind, JobKind, schema_loader
from app.jobs.schemas import ColourSweepParams


@pytest.fixture(autouse=True)
def _no_wait_between_attempts(app, monkeypatch):
    # The app's configuration, for this test only: retries follow each other at once.
    monkeypatch.setitem(app.config, "JOB_RETRY_SECONDS", "0")
    monkeypatch.setitem(app.config, "JOB_MAX_ATTEMPTS", 3)
    # Job ids start again at 1 in every test (the tables are emptied): so do their result files.
    shutil.rmtree(os.path.join(app.instance_path, "jobs"), ignore_errors=True)


@pytest.fixture
def finish_jobs(app) -> Callable[[], None]:
    """Wait for the jobs this process runs, then forget what the test's session had loaded."""

    def finish() -> None:
        dispatch.wait_in_process(app, timeout=120)
        db.session.expire_all()

    return finish


def with_kinds(application, kinds: dict[str, JobKind] | None = None, exports: dict[str, ExportKind] | None = None):
    """The app's wiring with more kinds or exports (undone by :func:`restore`)."""
    before = application.extensions[EXTENSION_KEY]
    application.extensions[EXTENSION_KEY] = dataclasses.replace(
        before,
        job_kinds=MappingProxyType({**before.job_kinds, **(kinds or {})}),
        job_exports=MappingProxyType({**before.job_exports, **(exports or {})}),
    )
    db.session.remove()  # the next session carries the new wiring
    return before


def make_kind(name: str, run) -> JobKind:
    return JobKind(name=name, load_params=schema_loader(ColourSweepParams), authorise=lambda *_: None, run=run)


@pytest.fixture
def extra_kinds(app) -> Iterator[Callable[..., None]]:
    saved = []

    def install(kinds=None, exports=None) -> None:
        saved.append(with_kinds(app, kinds, exports))

    yield install
    if saved:
        app.extensions[EXTENSION_KEY] = saved[0]
        db.session.remove()
