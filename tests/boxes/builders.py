"""Builders for the box tests (no tests here): a box registered through the API."""

from __future__ import annotations

from datetime import datetime

from tests import factories

BOX = dict(factories.BOX_DEFAULTS)


def iso(dt: datetime) -> str:
    return dt.isoformat()


def register(api, as_="ent", **extra):
    r = api.post("/api/v1/boxes", {**BOX, **extra}, as_=as_)
    assert r.status_code == 201, r.get_json()
    return r.get_json()
