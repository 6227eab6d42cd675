"""Which boxes of an ingest batch need their colour evaluated: those whose sensor facts crossed a
rule's threshold (issue 12, "colour changes are incremental").

A batch's readings change only the facts the sensor provider gives (the integral, the load, the
newest reading, the breakthrough streak), so only the rules that read them can change: the
saturation levels, the predicted date's warning and overdue (through the integral and the load)
and the sensor rules. :func:`crossed` evaluates exactly those rules on the box's new state (the
states are in the session: no query) and compares the rules that trigger with those the box's
stored reasons name. Equal sets mean the full evaluation would give the same colour and the same
reasons (the other rules' facts, the fill and the waste on site, did not change with the batch),
so the box is left as stored; any difference, or a box whose stored evaluation is stale (its next
check has come, other rules, never stored), is evaluated in full.

What a skipped box does not get is its shown figures refreshed (saturation, the latest reading,
the observed values of its reasons): they are those of its last evaluation, at most until its
next check, which for a box with sensors is at most ``TELEMETRY_MAX_INTERVAL_S`` after the
newest reading it was evaluated with (the open interval stops growing then), when ingest or the
sweep evaluates it again.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.boxes.colour import BASE_CHECKS, RuleSet, evaluate
from app.boxes.models import Box, Fill
from app.boxes.services.stored import rules_digest
from app.common.wiring import wiring_of

# The engine's rules whose facts readings change (the iodine's is the fill's).
_SATURATION_RULES = frozenset(BASE_CHECKS) - {"iodine_below_minimum"}


def sensor_rule_codes() -> frozenset[str]:
    from app.telemetry.colour import SENSOR_CHECKS  # the provider's module (it reads the app's settings)

    return _SATURATION_RULES | frozenset(SENSOR_CHECKS)


def _sensor_rules(rules: RuleSet, codes: frozenset[str]) -> RuleSet:
    """The rule set restricted to the rules readings can change (same checks, same order)."""
    return replace(rules, rules=tuple(r for r in rules.rules if r.code in codes))


def crossed(session: Session, boxes: list[Box], fills: dict[int, Fill], now: datetime) -> list[Box]:
    """The boxes among ``boxes`` (just ingested into) whose colour must be evaluated now."""
    from app.telemetry.colour import sensor_facts

    rules = wiring_of(session).colour_rules()
    digest = rules_digest(rules)
    codes = sensor_rule_codes()
    sensor_rules = _sensor_rules(rules, codes)
    candidates: list[Box] = []
    due: list[Box] = []
    for box in boxes:
        detail = box.colour_detail
        if (
            detail is None
            or detail.get("rules") != digest
            or (box.colour_next_check_at is not None and box.colour_next_check_at <= now)
        ):
            due.append(box)
        else:
            candidates.append(box)
    if not candidates:
        return due
    facts_by_box: dict[int, dict[str, Any]] = {
        b.id: {"box": b, "now": now, "fill": fills.get(b.id), "next_check_candidates": []} for b in candidates
    }
    sensor_facts(session, candidates, facts_by_box, now)
    for box in candidates:
        ev = evaluate(facts_by_box[box.id], sensor_rules)
        found = {r["code"] for r in ev.reasons if r["code"] in codes}
        stored = {r.get("code") for r in box.colour_reasons or [] if r.get("code") in codes}
        if found != stored:
            due.append(box)
    return due
