"""The demo loop's shared parts: its constants, the state handed between the steps (:class:`Loop`,
:class:`Shipment`), time helpers, the deferred colour refresh, and the people who act.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from app.accounts.models import Organization, User
from app.accounts.services import Principal
from app.common.timeutil import SHANGHAI, local_date
from app.demo.data import DemoContext
from app.ledger import services as ledger
from app.ledger.models import LedgerRecord, Manifest

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
WASTE_CODE = "900-039-49"
DRIVERS = (("王建国", "13857612306"), ("陈海峰", "13906561847"), ("李志强", "15888602931"), ("周卫东", "13736579120"))
REFUSAL = "含水率过高、吨袋破损渗漏，不符合入厂接收标准，整车拒收退回 (wet and leaking bags: refused)"
CANCEL_REASON = "接受单位选错，作废后重新填报 (wrong receiver chosen; cancelled and re-entered)"
# 利用/处置方式 by sector (pharmaceutical carbon with halogenated solvents is often incinerated).
METHODS_PHARMA = (("R7", 0.58), ("R15", 0.05), ("D10", 0.30), ("C1", 0.07))
METHODS_OTHER = (("R7", 0.80), ("R15", 0.10), ("D10", 0.05), ("C1", 0.05))


@dataclass
class Shipment:
    enterprise: Organization
    created_at: datetime
    batches: list[LedgerRecord]
    fate: str = "closed"  # closed | in_transit | overdue | late | received | rejected | discrepant | cancelled
    method: str | None = None
    receiver: Organization | None = None


@dataclass
class Loop:
    """What the extension builds and hands on between its steps."""

    ctx: DemoContext
    now: datetime
    rng: random.Random
    enterprise_actor: dict[int, Principal] = field(default_factory=dict)
    plant_actor: dict[int, Principal] = field(default_factory=dict)
    receiver_of: dict[int, Organization] = field(default_factory=dict)
    held: set[int] = field(default_factory=set)  # generation record ids left on site on purpose
    last_shipment: dict[int, datetime] = field(default_factory=dict)
    manifests: list[Manifest] = field(default_factory=list)

    @property
    def carrier(self) -> Principal:
        return self.ctx.principal("yunshu")


# ---------------------------------------------------------------- time helpers


def at_local(day: date, hour: float) -> datetime:
    """``day`` at ``hour`` (fractional) Shanghai time, as UTC."""
    minutes = min(round(hour * 60), 24 * 60 - 1)
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=SHANGHAI).astimezone(UTC)


def working_hours(rng: random.Random, moment: datetime, start: float = 8.5, end: float = 16.5) -> datetime:
    """The local day of ``moment`` at a time within working hours."""
    return at_local(local_date(moment), rng.uniform(start, end))


@contextmanager
def deferred_box_refresh() -> Iterator[None]:
    """Run manifest steps without their per-step colour refresh (see the module docstring)."""
    original = ledger.refresh_box_colours
    ledger.refresh_box_colours = lambda session, record_ids, now: None
    try:
        yield
    finally:
        ledger.refresh_box_colours = original


# ---------------------------------------------------------------- people


def _staff_user(session, ctx: DemoContext, org: Organization, username: str, display: str) -> Principal:
    """A staff account of ``org`` (same demo password as the printed logins; not printed itself)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(
            username=username,
            display_name=display,
            organization_id=org.id,
            role="staff",
            password_hash=ctx.users["qiye"].password_hash,
            created_at=ctx.now - 400 * DAY,
        )
        session.add(user)
        session.flush()
    return Principal(user=user)


def people(session, loop: Loop) -> None:
    ctx = loop.ctx
    for i, enterprise in enumerate(ctx.enterprises):
        if enterprise.id == ctx.users["qiye"].organization_id:
            loop.enterprise_actor[enterprise.id] = ctx.principal("qiye2")
        else:
            loop.enterprise_actor[enterprise.id] = _staff_user(
                session, ctx, enterprise, f"qiye-{i:02d}", f"环保专员（{enterprise.name}）"
            )
    tiantai, wenling = ctx.orgs["regen_tiantai"], ctx.orgs["regen_wenling"]
    loop.plant_actor[tiantai.id] = ctx.principal("zaisheng")
    loop.plant_actor[wenling.id] = _staff_user(session, ctx, wenling, "zaisheng-wl", f"接收员（{wenling.name}）")
    for enterprise in ctx.enterprises:
        county = enterprise.county_code
        if county in ("331081", "331083"):
            receiver = wenling
        elif county == "331004":
            receiver = wenling if loop.rng.random() < 0.6 else tiantai
        else:
            receiver = tiantai
        loop.receiver_of[enterprise.id] = receiver
