"""What the demo loader hands to the domains' demo extensions, and how they plug in.

An extension is a callable ``fn(session, ctx, now)``, normally in a module ``app/<domain>/demo.py``.
The list of them, in the order they run, is written out in one place,
:func:`app.common.wiring.demo_extensions` (the composition root: the domains' demo modules import
this package, so it cannot import them); :func:`app.demo.data.load_demo` runs them in order after
the boxes are loaded. Extension modules import these names from :mod:`app.demo.data`, which
re-exports them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType

from sqlalchemy.orm import Session

from app.accounts.models import Organization, Park, User
from app.accounts.services import Principal
from app.boxes.models import Box

DemoFn = Callable[[Session, "DemoContext", datetime], None]


@dataclass(frozen=True)
class DemoExtension:
    """One domain's part of the demo: ``run(session, ctx, now)``, at the end of :func:`load_demo`.

    ``deferred_checks``: rule codes whose facts only the extensions supply (manifests that ship
    the waste carbon, the recent sensor readings). Those facts are incomplete until every
    extension has run, so the replay and the extensions leave these checks out of the colour
    history they write (:func:`checks_deferred`); the final evaluation at ``now`` applies every rule.
    """

    run: DemoFn
    deferred_checks: frozenset[str] = frozenset()


def _no_finding(facts, params) -> None:
    return None


@contextmanager
def checks_deferred(session: Session, codes: frozenset[str]) -> Iterator[None]:
    """While inside, ``session`` evaluates colours with the checks ``codes`` finding nothing: its
    own wiring, changed for this session only (another session, another app, is untouched)."""
    from app.common.wiring import SESSION_KEY, wiring_of

    wiring = wiring_of(session)
    checks = {code: (_no_finding if code in codes else fn) for code, fn in wiring.colour_checks.items()}
    session.info[SESSION_KEY] = replace(wiring, colour_checks=MappingProxyType(checks))
    try:
        yield
    finally:
        session.info[SESSION_KEY] = wiring


@dataclass
class Login:
    username: str
    role_zh: str
    role_en: str
    organization: str


@dataclass
class BoxPlan:
    target: str
    cycle_days: float
    fill_times: list[datetime]
    status_change: tuple[str, datetime] | None = None
    actor: str = "huanta"


@dataclass
class DemoContext:
    """What the loader built; handed to the extensions."""

    now: datetime
    rng: random.Random
    operator: User
    parks: dict[str, Park] = field(default_factory=dict)
    orgs: dict[str, Organization] = field(default_factory=dict)  # see load_organisations for the keys
    enterprises: list[Organization] = field(default_factory=list)
    sectors: dict[int, str] = field(default_factory=dict)  # enterprise id → sector
    users: dict[str, User] = field(default_factory=dict)
    logins: list[Login] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    plans: dict[int, BoxPlan] = field(default_factory=dict)  # box id → plan
    fills: int = 0

    def principal(self, username: str) -> Principal:
        return Principal(user=self.users[username])

    @property
    def operator_principal(self) -> Principal:
        return Principal(user=self.operator)
