"""Colour rules of the ledger: waste carbon from a box held on site too long, or not yet on a manifest.

One fact provider reads, in one query for the whole batch of boxes, every generation batch of
these boxes that is still on site; the checks compare its age with the rule's ``days``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from sqlalchemy import bindparam, select, text

from app.boxes.colour import Check, Finding
from app.common.columns import ZERO_KG
from app.ledger.models import WASTE_ON_SITE, LedgerRecord
from app.ledger.services.rules_access import EPS


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# Built once: this runs on every colour evaluation (each ingest batch, each uncached box read,
# the sweep). The condition is the partial index's predicate as literal SQL (its EPS is
# rules_access.EPS): bound parameters would keep a prepared statement's generic plan off the index.
assert f"on_site_kg > {EPS}" in WASTE_ON_SITE
_WASTE_ON_SITE = select(
    LedgerRecord.box_id,
    LedgerRecord.fill_id,
    LedgerRecord.occurred_at,
    LedgerRecord.on_site_kg,
    LedgerRecord.available_kg,
    LedgerRecord.batch_code,
).where(
    LedgerRecord.box_id.in_(bindparam("ids", expanding=True)),
    text(WASTE_ON_SITE),
)


# session.info[REPLAY_KEY] while app.boxes.services.rebuild_history evaluates a box at past
# moments (as app.telemetry.colour.REPLAY_KEY).
REPLAY_KEY = "colour_replay"


def waste_on_site(session, boxes, facts_by_box, now) -> None:
    ids = [b.id for b in boxes]
    if not ids:
        return
    # The rows are the stored records, whatever the moment: a replay (hundreds of moments, none
    # of which changes the ledger) reads them once.
    replay = session.info.get(REPLAY_KEY)
    memo = replay.setdefault("waste_on_site", {}) if replay is not None else None
    rows = memo.get(tuple(ids)) if memo is not None else None
    if rows is None:
        rows = session.execute(_WASTE_ON_SITE, {"ids": ids}).all()
        if memo is not None:
            memo[tuple(ids)] = rows
    for box_id, fill_id, occurred_at, on_site, available, batch_code in rows:
        facts = facts_by_box[box_id]
        occurred_at = _aware(occurred_at)
        oldest = facts.get("waste_on_site_since")
        if oldest is None or occurred_at < oldest:
            facts["waste_on_site_since"] = occurred_at
            facts["waste_on_site_batch"] = batch_code
        facts["waste_on_site_kg"] = facts.get("waste_on_site_kg", ZERO_KG) + on_site  # exact kg
        fill = facts.get("fill")
        # The waste of the last replacement is the batch written for the box's current fill.
        if fill is not None and fill.id == fill_id and (available or ZERO_KG) > EPS:
            facts["waste_unmanifested_since"] = occurred_at
            facts["waste_unmanifested_kg"] = available


def _days(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 86400:.0f} d"


def _age_check(facts, params, key: str) -> Finding | None:
    since = facts.get(key)
    if since is None:
        return None
    days = params.get("days", 0)
    due = since + timedelta(days=days)
    if facts["now"] >= due:
        return Finding(_days(facts["now"] - since), f"{days:g} d", due)
    # Time alone will trigger it: make the sweep look again then.
    facts.setdefault("next_check_candidates", []).append(due)
    return None


def _waste_held_too_long(facts, params):
    return _age_check(facts, params, "waste_on_site_since")


def _waste_not_on_manifest(facts, params):
    return _age_check(facts, params, "waste_unmanifested_since")


# The checks of the waste rules, plugged into the engine by app.common.wiring (colour_checks).
WASTE_CHECKS: Mapping[str, Check] = MappingProxyType(
    {"waste_held_too_long": _waste_held_too_long, "waste_not_on_manifest": _waste_not_on_manifest}
)
