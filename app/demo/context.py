"""What the demo loader hands to the domains' demo extensions, and how they plug in.

An extension is a callable ``fn(session, ctx, now)`` registered with :func:`demo_extension`,
normally in a module ``app/<domain>/demo.py`` that :func:`import_demo_extensions` imports;
:func:`app.demo.data.load_demo` runs them in order after the boxes are loaded. Extension modules
import these names from :mod:`app.demo.data`, which re-exports them.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from app.accounts.models import Organization, Park, User
from app.accounts.services import Principal
from app.boxes.models import Box

DemoExtension = Callable[[Session, "DemoContext", datetime], None]
#: ``fn(session, ctx, now)`` run in order at the end of :func:`load_demo`.
DEMO_EXTENSIONS: list[DemoExtension] = []


#: Rule codes whose facts only the extensions supply (manifests that ship the waste carbon, the
#: recent sensor readings). Those facts are incomplete until every extension has run, so the
#: replay and the extensions leave these checks out of the colour history they write; the final
#: evaluation at ``now`` applies every rule. An extension module adds its codes when imported.
REPLAY_DEFERRED_CHECKS: set[str] = set()


@contextmanager
def checks_deferred(codes: set[str]):
    from app.boxes.colour import CHECKS, import_rule_plugins

    import_rule_plugins()
    saved = {code: CHECKS[code] for code in codes if code in CHECKS}
    CHECKS.update({code: (lambda facts, params: None) for code in saved})
    try:
        yield
    finally:
        CHECKS.update(saved)


def demo_extension(fn: DemoExtension) -> DemoExtension:
    """Register ``fn`` as a demo extension (once, however often its module is imported)."""
    if fn not in DEMO_EXTENSIONS:
        DEMO_EXTENSIONS.append(fn)
    return fn


def import_demo_extensions() -> None:
    """Import ``app.<domain>.demo`` for every domain that has one, so its extensions register."""
    from app import DOMAINS

    for domain in DOMAINS:
        name = f"app.{domain}.demo"
        if domain == "demo":
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise


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
