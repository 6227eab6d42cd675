"""The demo's closed loop: waste carbon shipped on manifests, received, regenerated, filled again.

A demo extension (listed in :func:`app.common.wiring.demo_extensions`), run by :func:`app.demo.data.load_demo`
after the boxes and their backdated fill histories exist. Everything goes through the services
(``create_manifest``, ``submit``, ``pickup``, ``receive``, ``reject``, ``process``, ``cancel``,
``record_batch``, ``record_fill``, ``set_status``) with backdated ``now=`` values:

* every enterprise ships the waste carbon of its replacements roughly monthly (consignor = the
  enterprise's environmental officer, carrier = the demo carrier ``yunshu``, receiver = the
  regeneration plant of 天台 or 温岭), walked through submit → pickup → receive → process, mostly
  R7 (regeneration) or R15, some D10 (incineration), a few C1 (cement kiln), two D1 (landfill);
* the tail a real city has today: drafts and submitted manifests waiting for the carrier,
  shipments in transit, two overdue (in transit beyond 5 working days), one received late, one
  discrepant (weighed > 5 % short), one refused (拒收) and re-shipped, one cancelled;
* a few boxes' waste deliberately left behind (yellow "not on a manifest", red "held too long");
* the plants record monthly regeneration batches from the received waste carbon (iodine
  850–950 mg/g); the carbon service catches up on overdue and due boxes, restarts a few stopped
  ones and commissions a few new ones, mostly with regenerated carbon naming its batch.

Colour refreshes: a manifest step refreshes the colours of the boxes its waste came from at the
step's time. Replayed in the past, after the fills that came later are already stored, those
refreshes would write colour changes out of order (and cost most of the load time); the steps
here therefore run with that refresh deferred, and :func:`load_demo` evaluates every box once at
``now``. Fills recorded here come after each box's history, so they refresh as usual.

Deterministic: its own ``random.Random`` seeded from ``ctx.rng``.

Laid out as: :mod:`.loop` (constants, state, time helpers, people), :mod:`.shipments` (waste left
behind, the manifests), :mod:`.refills` (regeneration batches, recent fills); this module holds
the extension itself.
"""

from __future__ import annotations

import random
from datetime import datetime

from sqlalchemy import select

from app.demo.data import DemoContext
from app.ledger.demo.loop import Loop, deferred_box_refresh, people
from app.ledger.demo.refills import recent_fills, regenerate
from app.ledger.demo.shipments import assign_fates, hold_some_waste, open_manifests, schedule, ship
from app.ledger.models import LedgerRecord

# The replayed fill histories predate the shipments below: their colour history leaves the waste
# rules out (app.demo.context.DemoExtension.deferred_checks, app.common.wiring.demo_extensions).
REPLAY_DEFERRED_CHECKS = frozenset({"waste_held_too_long", "waste_not_on_manifest"})


# ---------------------------------------------------------------- the extension


def close_the_loop(session, ctx: DemoContext, now: datetime) -> None:
    loop = Loop(ctx=ctx, now=now, rng=random.Random(ctx.rng.random()))
    people(session, loop)
    box_ids = [b.id for b in ctx.boxes]
    records = list(
        session.scalars(
            select(LedgerRecord)
            .where(LedgerRecord.stage == "generation", LedgerRecord.box_id.in_(box_ids))
            .order_by(LedgerRecord.occurred_at, LedgerRecord.id)
        )
    )
    showcase = ctx.users["qiye"].organization_id
    pool = [b for b in ctx.boxes if b.status == "active" and b.enterprise_id != showcase]
    left_behind = hold_some_waste(session, loop, records, pool)
    shipments = schedule(loop, records)
    assign_fates(loop, shipments)
    shipments.sort(key=lambda s: s.created_at)  # manifest serials follow time
    with deferred_box_refresh():
        for shipment in shipments:
            ship(session, loop, shipment)
        batches = regenerate(session, loop)
    recent_fills(session, loop, batches, {b.id for b in left_behind})
    with deferred_box_refresh():
        open_manifests(session, loop)
    session.flush()
