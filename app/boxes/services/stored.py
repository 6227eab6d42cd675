"""The stored evaluation: what a read of a box shows without evaluating it.

Every evaluation that is stored (``refresh_colours``, ``rebuild_history``: fills, readings,
status changes, ledger steps, the sweep, a read whose box was due) writes beside the colour and
its reasons the box's saturation, predicted replacement date and the figures its page and JSON
show (:func:`snapshot`). A read takes them back (:func:`stored_evaluation`) as long as they are
still true: the box's next check (``colour_next_check_at``, the next moment at which time alone
can change its colour) has not come, and the colour rules are those it was evaluated with. Else
the read evaluates and stores that box, as every read did before.

What a stored evaluation shows is the box as evaluated at ``colour_evaluated_at``: the
``observed`` values of its reasons (hours of silence, days left) are those of that moment. The
design-load saturation, a straight line in time, is worked out for the moment of the read with
the engine's formula (:func:`app.boxes.colour.derive_saturation`).
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from app.boxes.colour import Evaluation, RuleSet
from app.boxes.models import Box, Fill

# The stored columns an evaluation fills (besides colour, colour_reasons, colour_next_check_at).
STORED_COLUMNS = ("saturation", "predicted_replacement_at", "colour_detail")


def rules_digest(rules: RuleSet) -> str:
    """What a stored evaluation was made with: any change of the rule file (thresholds,
    levels, messages) or of the code each rule runs makes the stored evaluations of other rules
    stale. The same in every process: a check is named by its module and name, never by its
    ``repr`` (which holds its memory address, so each gunicorn worker had its own digest and
    re-evaluated, and rewrote, every box the other had stored). Kept on the rule set (the
    loader's cache returns the same object until the file changes)."""
    cached = rules.__dict__.get("_digest")
    if cached is not None:
        return cached
    checks = sorted((code, f"{fn.__module__}.{fn.__qualname__}") for code, fn in rules.checks.items())
    text = repr((rules.version, rules.min_iodine_mg_g, rules.rules, checks))
    digest = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]
    object.__setattr__(rules, "_digest", digest)  # a frozen dataclass: set once, never changed
    return digest


def _finite(value: Any) -> Any:
    """JSON has no infinity (a box without capacity): stored as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def snapshot(ev: Evaluation, digest: str) -> dict[str, Any]:
    """The stored columns of evaluation ``ev`` (made with the rules of ``digest``)."""
    facts = ev.facts
    fill = facts.get("fill")
    return {
        "saturation": ev.saturation,
        "predicted_replacement_at": ev.predicted_replacement_at,
        "colour_detail": {
            "rules": digest,
            "rules_version": facts["rules"].version if "rules" in facts else "",
            "reasons": [dict(r) for r in ev.reasons],  # with their zh/en messages
            "saturation_basis": ev.saturation_basis,
            "adsorbed_kg": _finite(facts.get("adsorbed_kg")),
            "capacity_kg": _finite(facts.get("capacity_kg")),
            "load_basis": facts.get("load_basis"),
            "load_kg_per_day": _finite(facts.get("load_kg_per_day")),
            "load_window": facts.get("load_window"),
            "latest_reading": facts.get("latest_reading"),
            "fill_id": fill.id if fill is not None else None,
            "next_checks": next_checks(facts),
        },
    }


def next_checks(facts: dict[str, Any]) -> list[str]:
    """Every future moment the evaluation named as one at which time alone may change the box's
    colour (its next check is the first), sorted, repeats kept. Ingest's figures path
    (app.telemetry.services.figures) takes back those that readings do not move (e.g. the
    waste's deadlines) when it updates a box without evaluating it."""
    now = facts["now"]
    return sorted(
        t.astimezone(UTC).isoformat() for t in facts.get("next_check_candidates", ()) if t is not None and t > now
    )


def stored_evaluation(session: Session, box: Box, now: datetime, digest: str, rules: RuleSet) -> Evaluation | None:
    """The box's stored evaluation as an :class:`Evaluation` at ``now``, or None when it must be
    evaluated: never stored, its next check has come, other rules, or unsaved changes."""
    if not is_stored_current(box.colour_detail, box.colour_next_check_at, now, digest):
        return None
    state = sa_inspect(box)
    if not state.persistent or state.modified:
        return None
    fill_id = (box.colour_detail or {}).get("fill_id")
    fill = session.get(Fill, fill_id) if fill_id is not None else None
    return evaluation_from_stored(box, fill, now, rules)


def is_stored_current(
    detail: dict[str, Any] | None, next_check_at: datetime | None, now: datetime, digest: str
) -> bool:
    """May a read show the stored evaluation (``colour_detail``, next check) as it is?"""
    if detail is None or detail.get("rules") != digest:
        return False
    return next_check_at is None or next_check_at > now


def evaluation_from_stored(box: Any, fill: Any, now: datetime, rules: RuleSet) -> Evaluation:
    """The stored evaluation of ``box`` (a :class:`Box`, or a row with its columns and
    ``capacity_kg``/``design_daily_load_kg``: the lean read, app.boxes.lean) with its stored
    fill ``fill``, as an :class:`Evaluation` at ``now``."""
    detail = box.colour_detail
    facts: dict[str, Any] = {
        "box": box,
        "now": now,
        "fill": fill,
        "rules": rules,
        "stored": True,  # read back, not evaluated
        "next_check_candidates": [],
    }
    for key in ("adsorbed_kg", "capacity_kg", "load_basis", "load_kg_per_day", "load_window", "latest_reading"):
        if detail.get(key) is not None:
            facts[key] = detail[key]
    saturation = box.saturation
    basis = detail.get("saturation_basis")
    if basis == "design" and fill is not None:
        # derive_saturation's design branch: adsorbed = design load × days since the fill.
        capacity = box.capacity_kg(fill.mass_kg)
        elapsed_days = max((now - fill.filled_at).total_seconds() / 86400, 0.0)
        adsorbed = box.design_daily_load_kg * elapsed_days
        facts["adsorbed_kg"] = adsorbed
        saturation = adsorbed / capacity if capacity > 0 else math.inf
    return Evaluation(
        colour=box.colour,
        reasons=[dict(r) for r in detail.get("reasons") or []],
        saturation=saturation,
        predicted_replacement_at=box.predicted_replacement_at,
        saturation_basis=basis,
        next_check_at=box.colour_next_check_at,
        since=box.colour_since,
        facts=facts,
    )
