"""Boxes: registration, fills and replacements, colour evaluation and history, visibility."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, false, func, or_, select, true, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import get_history, set_committed_value

from app.accounts.models import Organization
from app.accounts.services import Principal, enterprise_scope
from app.boxes import codes
from app.boxes.colour import SPENT_CARBON_RULES, Evaluation, RuleSet, evaluate, import_rule_plugins
from app.boxes.models import BOX_STATUSES, CARBON_TYPES, Box, BoxEvent, BoxStatus, ColourChange, Colour, Fill, FillKind
from app.common.columns import is_number, kg, kg_or_none
from app.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.common.timeutil import utcnow
from app.common.wiring import wiring_of

# Other domains take part in a fill through the app's wiring (app.common.wiring.build_wiring):
# its fill validators run before a fill is stored (they raise InvalidInput), its fill hooks after
# (the ledger writes the generation record of the removed waste carbon; regeneration checks the
# regenerated-carbon balance). Fact providers add the colour engine's facts the same way.


# ---------------------------------------------------------------- visibility


def box_scope(actor: Principal):
    """Boxes ``actor`` may see: its jurisdiction's enterprises, and the boxes it serves."""
    if actor.is_operator:
        return true()
    org = actor.organization
    if org is None or actor.is_device:  # a gateway's token only ingests readings
        return false()
    enterprises = select(Organization.id).where(enterprise_scope(actor))
    return or_(Box.enterprise_id.in_(enterprises), Box.service_org_id == org.id)


def can_see(
    actor: Principal, *, enterprise_id: int, service_org_id: int | None, county_code: str | None, park_id: int | None
) -> bool:
    """The same rule as :func:`box_scope`, for one box whose facts are already in hand
    (the read cache); a test checks the two agree."""
    if actor.is_operator:
        return True
    org = actor.organization
    if org is None or actor.is_device:
        return False
    if org.id in (enterprise_id, service_org_id):
        return True
    if org.has_role("regulator") and (org.county_code is None or org.county_code == county_code):
        return True
    return bool(org.has_role("park_admin") and org.park_id is not None and org.park_id == park_id)


def can_service(actor: Principal, box: Box) -> bool:
    """May ``actor`` record fills on ``box``? Its enterprise's staff and its carbon service."""
    if actor.is_operator:
        return True
    org = actor.organization
    return bool(org and not actor.is_device and org.id in (box.enterprise_id, box.service_org_id))


def get_box(session: Session, actor: Principal, raw_code: str) -> Box:
    code = codes.normalise(raw_code)
    box = None
    if code is not None:
        box = session.scalar(select(Box).where(Box.code == code, box_scope(actor)))
    if box is None:
        # Another tenant's box is "not found" too: existence is not disclosed.
        raise NotFound(f"碳箱 {raw_code} 不存在或无权查看 (box {raw_code} not found)")
    return box


def require_visible_enterprise(session: Session, actor: Principal, enterprise_id: int) -> None:
    """Raise NotFound unless ``actor`` may see enterprise ``enterprise_id``: in its
    jurisdiction, or the enterprise of a box it serves. Existence is not disclosed."""
    visible = session.scalar(select(Organization.id).where(Organization.id == enterprise_id, enterprise_scope(actor)))
    if visible is None:
        visible = session.scalar(select(Box.id).where(Box.enterprise_id == enterprise_id, box_scope(actor)).limit(1))
    if visible is None:
        raise NotFound(f"企业 {enterprise_id} 不存在或无权查看 (enterprise {enterprise_id} not found)")


def find_box_public(session: Session, raw_code: str) -> Box | None:
    """The scan page shows a box's colour to anyone holding its label."""
    code = codes.normalise(raw_code)
    return session.scalar(select(Box).where(Box.code == code)) if code else None


def list_boxes(
    session: Session,
    actor: Principal,
    *,
    colour: str | None = None,
    county: str | None = None,
    park: int | None = None,
    enterprise: int | None = None,
    status: str | None = None,
):
    query = select(Box).where(box_scope(actor))
    if colour or county or park:
        refresh_due(session, utcnow())
    if colour:
        query = query.where(Box.colour == colour)
    if county or park:
        orgs = select(Organization.id)
        if county:
            orgs = orgs.where(Organization.county_code == county)
        if park:
            orgs = orgs.where(Organization.park_id == park)
        query = query.where(Box.enterprise_id.in_(orgs))
    if enterprise:
        query = query.where(Box.enterprise_id == enterprise)
    if status:
        query = query.where(Box.status == status)
    return query.order_by(Box.id)


# ---------------------------------------------------------------- registration


def _positive(errors: dict, data: dict, name: str, required: bool = True) -> None:
    value = data.get(name)
    if value is None:
        if required:
            errors.setdefault(name, []).append("required")
        return
    if not is_number(value) or value <= 0 or (name.endswith("_kg") and kg(value) <= 0):
        errors.setdefault(name, []).append(
            "must be greater than 0" + (" (at least 1 g)" if name.endswith("_kg") else "")
        )


def register_box(session: Session, actor: Principal, data: dict[str, Any], now: datetime | None = None) -> Box:
    now = now or utcnow()
    errors: dict[str, list[str]] = {}
    enterprise_id = data.get("enterprise_id") or (actor.organization.id if actor.organization else None)
    enterprise = session.get(Organization, enterprise_id) if enterprise_id else None
    if enterprise is None or not enterprise.has_role("generator"):
        errors["enterprise_id"] = ["an organisation with the generator role is required"]
    elif not (actor.is_operator or (actor.organization and actor.organization.id == enterprise.id)):
        raise Forbidden("只能为本单位登记碳箱 (boxes are registered by their enterprise or an operator)")
    service_id = data.get("service_org_id")
    if service_id is not None:
        service = session.get(Organization, service_id)
        if service is None:
            errors["service_org_id"] = [f"unknown organisation {service_id}"]
    if data.get("carbon_type") not in CARBON_TYPES:
        errors["carbon_type"] = [f"one of {', '.join(CARBON_TYPES)}"]
    for name in (
        "design_fill_kg",
        "design_airflow_m3_h",
        "design_removed_mg_m3",
        "hours_per_day",
        "emission_limit_mg_m3",
    ):
        _positive(errors, data, name)
    if data.get("hours_per_day") is not None and data["hours_per_day"] > 24:
        errors.setdefault("hours_per_day", []).append("at most 24")
    capacity = data.get("adsorption_capacity", 0.10)
    if capacity is None or not 0 < capacity <= 0.5:
        errors["adsorption_capacity"] = ["a mass fraction in (0, 0.5], e.g. 0.10"]
    lo, hi = data.get("pressure_drop_min_pa"), data.get("pressure_drop_max_pa")
    if lo is not None and hi is not None and lo >= hi:
        errors["pressure_drop_max_pa"] = ["must be above pressure_drop_min_pa"]
    waste_code = data.get("waste_code") or "900-039-49"
    if errors:
        raise InvalidInput("The box has invalid fields.", errors=errors)
    code = data.get("code")
    if code:
        code = codes.normalise(code)
        if code is None:
            raise InvalidInput.field("code", "not a valid box code (check character mismatch)")
        if session.scalar(select(Box.id).where(Box.code == code)):
            raise Conflict(f"碳箱码 {code} 已存在 (box code exists)", errors={"code": ["already exists"]})
    else:
        for _ in range(20):
            code = codes.make_code(enterprise.county_code)
            if not session.scalar(select(Box.id).where(Box.code == code)):
                break
    box = Box(
        code=code,
        enterprise_id=enterprise.id,
        service_org_id=service_id,
        name=data.get("name") or "",
        facility_code=data.get("facility_code") or "TA001",
        outlet_code=data.get("outlet_code") or "DA001",
        carbon_type=data["carbon_type"],
        design_fill_kg=kg(data["design_fill_kg"]),
        design_airflow_m3_h=data["design_airflow_m3_h"],
        design_removed_mg_m3=data["design_removed_mg_m3"],
        hours_per_day=data["hours_per_day"],
        adsorption_capacity=capacity,
        emission_limit_mg_m3=data["emission_limit_mg_m3"],
        pressure_drop_min_pa=lo,
        pressure_drop_max_pa=hi,
        has_sensors=bool(data.get("has_sensors")),
        waste_code=waste_code,
        status=BoxStatus.ACTIVE,
        colour=Colour.GREY,
        colour_since=now,
        colour_evaluated_at=now,
        created_at=now,
        colour_reasons=[],
    )
    session.add(box)
    session.flush()
    session.add(BoxEvent(box_id=box.id, kind="registered", at=now, actor=actor.label, detail={"code": code}))
    session.add(
        ColourChange(
            box_id=box.id,
            colour="grey",
            previous_colour=None,
            changed_at=now,
            recorded_at=now,
            reasons=[{"code": "no_active_fill", "level": "grey"}],
        )
    )
    return box


def touch(session: Session, box_ids) -> None:
    """Tell read caches that these boxes changed (other domains call this after writes that
    change what a box shows, e.g. telemetry after an ingest batch)."""
    ids = list(box_ids)
    if ids:
        session.execute(
            update(Box)
            .where(Box.id.in_(ids))
            .values(revision=Box.revision + 1)
            .execution_options(synchronize_session=False)
        )
        for box in session.identity_map.values():
            if isinstance(box, Box) and box.id in ids:
                session.expire(box, ["revision"])


def set_status(session: Session, actor: Principal, box: Box, status: str, now: datetime | None = None) -> Box:
    now = now or utcnow()
    if status not in BOX_STATUSES:
        raise InvalidInput.field("status", f"one of {', '.join(BOX_STATUSES)}")
    if not can_service(actor, box):
        raise Forbidden("无权修改该碳箱 (not allowed to change this box)")
    if box.status == "decommissioned" and status != "decommissioned":
        raise Conflict("已报废的碳箱不能重新启用 (a decommissioned box cannot be reactivated)")
    if status != box.status:
        session.add(
            BoxEvent(box_id=box.id, kind="status", at=now, actor=actor.label, detail={"from": box.status, "to": status})
        )
        box.status = status
        box.revision += 1
        refresh_colours(session, [box], now)
    return box


def reprint_label(session: Session, actor: Principal, box: Box, now: datetime | None = None) -> Box:
    """A new label version: the previous label's QR code is superseded and shown as such."""
    if not can_service(actor, box):
        raise Forbidden("无权重印该标签 (not allowed to reprint this label)")
    box.label_version += 1
    box.revision += 1
    session.add(
        BoxEvent(
            box_id=box.id,
            kind="label_reprinted",
            at=now or utcnow(),
            actor=actor.label,
            detail={"version": box.label_version},
        )
    )
    return box


# ---------------------------------------------------------------- fills


def record_fill(
    session: Session, actor: Principal, box: Box, data: dict[str, Any], now: datetime | None = None
) -> Fill:
    """A fill or a replacement. A replacement must give the weighed waste carbon removed; its
    generation record in the ledger is written by the ledger's fill hook."""
    now = now or utcnow()
    if not can_service(actor, box):
        raise Forbidden("只有本企业或其换炭服务单位可以登记换炭 (only the enterprise or its carbon service)")
    if box.status == "decommissioned":
        raise Conflict("已报废的碳箱不能装填 (the box is decommissioned)")
    errors: dict[str, list[str]] = {}
    filled_at: datetime | None = data.get("filled_at") or now
    if filled_at > now + timedelta(minutes=5):
        errors["filled_at"] = ["cannot be in the future"]
    _positive(errors, data, "mass_kg")
    _positive(errors, data, "iodine_mg_g")
    carbon_type = data.get("carbon_type") or box.carbon_type
    if carbon_type not in CARBON_TYPES:
        errors["carbon_type"] = [f"one of {', '.join(CARBON_TYPES)}"]
    previous = latest_fill(session, box.id)
    kind = FillKind.REPLACEMENT if previous is not None else FillKind.INITIAL
    if data.get("kind") and data["kind"] != kind:
        if data["kind"] == "replacement":
            errors["kind"] = ["the box has no carbon yet: the first fill is an initial fill"]
        else:
            kind = FillKind(data["kind"]) if data["kind"] in tuple(FillKind) else kind
    removed = data.get("removed_waste_kg")
    if kind == "replacement":
        if removed is None:
            errors["removed_waste_kg"] = ["required for a replacement: weigh the waste carbon removed"]
        elif not is_number(removed) or kg(removed) <= 0:
            errors["removed_waste_kg"] = ["must be greater than 0 (at least 1 g)"]
        if previous is not None and filled_at <= previous.filled_at:
            errors.setdefault("filled_at", []).append("must be after the previous fill")
    elif removed is not None:
        errors["removed_waste_kg"] = ["only a replacement removes waste carbon"]
    supplier_id = data.get("supplier_org_id")
    if supplier_id is not None and session.get(Organization, supplier_id) is None:
        errors["supplier_org_id"] = [f"unknown organisation {supplier_id}"]
    if errors:
        raise InvalidInput("The fill has invalid fields.", errors=errors)
    for validate in wiring_of(session).fill_validators:
        validate(session, box, data, actor)
    replaced_overdue = None
    if kind == "replacement":
        # The box as it stood at the replacement, with the carbon being replaced still in it.
        before = evaluate_boxes(session, [box], filled_at)[box.id]
        replaced_overdue = any(r["code"] in SPENT_CARBON_RULES for r in before.reasons)
    fill = Fill(
        box_id=box.id,
        kind=kind,
        filled_at=filled_at,
        mass_kg=kg(data["mass_kg"]),
        carbon_type=carbon_type,
        supplier_org_id=supplier_id,
        supplier_name=data.get("supplier_name") or "",
        batch_no=data.get("batch_no") or "",
        iodine_mg_g=data["iodine_mg_g"],
        regeneration_batch_id=data.get("regeneration_batch_id"),
        removed_waste_kg=kg_or_none(removed),
        replaced_overdue=replaced_overdue,
        performed_by_org_id=actor.organization.id if actor.organization else None,
        recorded_by_user_id=actor.user.id if actor.user else None,
        note=data.get("note") or "",
        created_at=now,
    )
    session.add(fill)
    session.flush()
    for hook in wiring_of(session).fill_hooks:
        hook(session, fill, actor)
    box.revision += 1
    # The fill may be back-dated: the history from its time on is evaluated again.
    rebuild_history(session, box, filled_at, now)
    return fill


def last_replacement(session: Session, box_id: int) -> Fill | None:
    return session.scalar(
        select(Fill)
        .where(Fill.box_id == box_id, Fill.kind == "replacement")
        .order_by(Fill.filled_at.desc(), Fill.id.desc())
        .limit(1)
    )


def latest_fill(session: Session, box_id: int, at: datetime | None = None) -> Fill | None:
    query = select(Fill).where(Fill.box_id == box_id)
    if at is not None:
        query = query.where(Fill.filled_at <= at)
    return session.scalar(query.order_by(Fill.filled_at.desc(), Fill.id.desc()).limit(1))


def latest_fills(session: Session, box_ids: list[int], at: datetime) -> dict[int, Fill]:
    """The active fill of each box, in one query."""
    if not box_ids:
        return {}
    latest = (
        select(Fill.box_id, func.max(Fill.filled_at).label("filled_at"))
        .where(Fill.box_id.in_(box_ids), Fill.filled_at <= at)
        .group_by(Fill.box_id)
        .subquery()
    )
    rows = session.scalars(
        select(Fill).join(latest, and_(Fill.box_id == latest.c.box_id, Fill.filled_at == latest.c.filled_at))
    )
    return {f.box_id: f for f in rows}


# ---------------------------------------------------------------- colours


@dataclass
class BoxView:
    box: Box
    evaluation: Evaluation
    fill: Fill | None


def _rules(session: Session) -> RuleSet:
    """The colour rules of the app that made ``session`` (its RULES_DIR, else the shipped file)."""
    return wiring_of(session).colour_rules()


def evaluate_boxes(
    session: Session, boxes: list[Box], now: datetime, fills: dict[int, Fill] | None = None
) -> dict[int, Evaluation]:
    """Each box's colour now. ``fills``: the active fill of each box at ``now`` (as
    :func:`latest_fills` finds them), when the caller has just loaded them (ingest does); a box
    missing from it has none. Without it they are read here."""
    return _evaluate_boxes(session, boxes, now, fills, _rules(session))


def _evaluate_boxes(
    session: Session, boxes: list[Box], now: datetime, fills: dict[int, Fill] | None, rules: RuleSet
) -> dict[int, Evaluation]:
    import_rule_plugins()
    if fills is None:
        fills = latest_fills(session, [b.id for b in boxes], now)
    facts_by_box = {b.id: {"box": b, "now": now, "fill": fills.get(b.id), "next_check_candidates": []} for b in boxes}
    for provider in wiring_of(session).fact_providers:
        provider(session, boxes, facts_by_box, now)
    return {b.id: evaluate(facts_by_box[b.id], rules) for b in boxes}


def refresh_colours(
    session: Session,
    boxes: list[Box],
    now: datetime | None = None,
    event_time: datetime | None = None,
    fills: dict[int, Fill] | None = None,
) -> dict[int, Evaluation]:
    """Evaluate and store each box's colour; a change enters the history with the time it
    happened: when the triggering condition began (time-driven changes, e.g. saturation
    reaching 80% overnight) or the event that caused it. A box whose next check time has
    passed is caught up by :func:`rebuild_history` from that time. ``fills``: as for
    :func:`evaluate_boxes`."""
    now = now or utcnow()
    # Boxes whose next check has passed unobserved: time alone may have changed their colour
    # more than once since, so their history is caught up moment by moment.
    behind = {
        b.id: rebuild_history(session, b, b.colour_next_check_at, now)
        for b in boxes
        if b.colour_next_check_at is not None and b.colour_next_check_at < now and b not in session.new
    }
    if behind:
        boxes = [b for b in boxes if b.id not in behind]
        if not boxes:
            return behind
    rules = _rules(session)
    evaluations = _evaluate_boxes(session, boxes, now, fills, rules)
    rules_version = rules.version
    written: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # changed columns → rows to update
    for box in boxes:
        ev = evaluations[box.id]
        changes: dict[str, Any] = {}
        reasons_changed = [r["code"] for r in ev.reasons] != [r.get("code") for r in box.colour_reasons or []]
        if ev.colour != box.colour:
            changed_at = event_time or ev.since or now
            if box.colour_since and changed_at < box.colour_since:
                changed_at = box.colour_since
            changed_at = min(changed_at, now)
            session.add(
                ColourChange(
                    box_id=box.id,
                    colour=ev.colour,
                    previous_colour=box.colour,
                    changed_at=changed_at,
                    recorded_at=now,
                    rules_version=rules_version,
                    reasons=[{k: r[k] for k in ("code", "level", "observed", "threshold")} for r in ev.reasons],
                )
            )
            changes["colour"] = ev.colour
            changes["colour_since"] = changed_at
        # Write only what changed: a read that finds nothing new must not write (and fsync).
        if reasons_changed:
            changes["colour_reasons"] = [
                {k: r[k] for k in ("code", "level", "observed", "threshold")} for r in ev.reasons
            ]
        if box.colour_next_check_at != ev.next_check_at:
            changes["colour_next_check_at"] = ev.next_check_at
        state = sa_inspect(box)
        if state.persistent and not state.modified:
            # A stored box without other pending changes (as after ingest): what changed is
            # written below, one UPDATE by primary key per set of changed columns, and set on
            # the box as stored, so that the flush has nothing to do for it.
            if changes:
                if box.colour_evaluated_at != now:
                    changes["colour_evaluated_at"] = now
                changes["revision"] = (box.revision or 0) + 1
                for key, value in changes.items():
                    set_committed_value(box, key, value)
                written.setdefault(tuple(changes), []).append({"box_pk": box.id, **changes})
            continue
        for key, value in changes.items():
            setattr(box, key, value)
        if box not in session.new and _is_modified(box):
            box.colour_evaluated_at = now
            if not get_history(box, "revision").has_changes():
                box.revision = (box.revision or 0) + 1
    if written:
        connection = session.connection()
        for rows in written.values():
            connection.execute(_UPDATE_BOX, rows)
    session.flush()
    return {**evaluations, **behind}


# The SET columns are the keys of the parameters (but ``box_pk``).
_UPDATE_BOX = update(Box.__table__).where(Box.__table__.c.id == bindparam("box_pk"))


def _is_modified(box: Box) -> bool:
    """``session.is_modified(box)``, asking only the attributes changed since the load (those
    with a committed value): the others have no history, and the box has some thirty."""
    state = sa_inspect(box)
    if not state.modified:
        return False
    return any(get_history(box, key).has_changes() for key in list(state.committed_state))


REPLAY_KEY = "colour_replay"  # as app.telemetry.colour.REPLAY_KEY: past moments are being evaluated
_REASON_KEYS = ("code", "level", "observed", "threshold")
# At most this many moments per replay (a box read every minute for months would be millions):
# past it the replay jumps to ``now``, and the history stays right up to the last moment seen.
MAX_REPLAY_MOMENTS = 20_000


def rebuild_history(session: Session, box: Box, since: datetime, now: datetime | None = None) -> Evaluation:
    """Rewrite ``box``'s colour history from ``since`` (the time a late fill, replacement or
    reading describes) to ``now``: the stored changes at or after ``since`` are replaced by those
    found by evaluating the box at each moment something may change, in order: ``since``, every
    fill, every reading (telemetry's provider adds them as next-check candidates and gives the
    sensor facts as they stood then), and every time threshold the evaluations name (saturation
    levels, the predicted date and its warning, silence alarms). A change is dated at the moment
    it was found: every time a condition can begin at is one of these moments.
    Rewritten changes keep their ``recorded_at`` when an equal change (colour and time) was
    stored before; new ones are recorded at ``now``. Replacements in the range have
    ``replaced_overdue`` recomputed. The evaluation at ``now`` is stored on the box and returned.
    """
    import heapq

    now = now or utcnow()
    if box.colour_next_check_at is not None and box.colour_next_check_at < since:
        since = box.colour_next_check_at  # a moment before the event was never looked at: from there
    since = min(since, now)
    rules = _rules(session)
    import_rule_plugins()
    session.flush()
    stored = list(
        session.scalars(
            select(ColourChange).where(ColourChange.box_id == box.id).order_by(ColourChange.changed_at, ColourChange.id)
        )
    )
    kept = [c for c in stored if c.changed_at < since]
    dropped = {(c.colour, c.changed_at): c.recorded_at for c in stored if c.changed_at >= since}
    for change in stored:
        if change.changed_at >= since:
            session.delete(change)
    session.flush()
    fills = list(session.scalars(select(Fill).where(Fill.box_id == box.id).order_by(Fill.filled_at, Fill.id)))

    def fill_at(t: datetime) -> Fill | None:
        active = None
        for f in fills:
            if f.filled_at <= t:
                active = f
        return active

    if kept:
        colour, last_at = kept[-1].colour, kept[-1].changed_at
    else:
        # The history starts grey (not in service): at registration, or at the first fill if that
        # came first (the box existed before it was registered here); before it, grey too.
        first = stored[0] if stored else None
        colour, last_at = "grey", min(box.created_at or since, fills[0].filled_at if fills else since)
        session.add(
            ColourChange(
                box_id=box.id,
                colour="grey",
                previous_colour=None,
                changed_at=last_at,
                recorded_at=first.recorded_at if first is not None else now,
                rules_version=first.rules_version if first is not None else rules.version,
                reasons=first.reasons
                if first is not None and first.colour == "grey"
                else [{"code": "no_active_fill", "level": "grey"}],
            )
        )
    moments = [since] + [f.filled_at for f in fills if since < f.filled_at < now]
    heapq.heapify(moments)
    previous_t: datetime | None = None
    seen = 0
    info_before = session.info.get(REPLAY_KEY)
    session.info[REPLAY_KEY] = {"since": {box.id: since}, "timelines": {}}
    try:
        for f in fills:
            if f.kind == "replacement" and since <= f.filled_at <= now:
                # The box as it stood at the replacement, with the carbon being replaced in it.
                older = [g for g in fills if g.filled_at < f.filled_at]
                before = _evaluate_boxes(session, [box], f.filled_at, {box.id: older[-1]} if older else {}, rules)[
                    box.id
                ]
                f.replaced_overdue = any(r["code"] in SPENT_CARBON_RULES for r in before.reasons)
        while moments and seen < MAX_REPLAY_MOMENTS:
            t = heapq.heappop(moments)
            if t >= now or (previous_t is not None and t <= previous_t):
                continue
            seen += 1
            active = fill_at(t)
            ev = _evaluate_boxes(session, [box], t, {box.id: active} if active else {}, rules)[box.id]
            if ev.colour != colour:
                # Every time a condition can begin at is a moment of its own (time thresholds are
                # next-check candidates, readings and fills are moments): the change is dated here.
                changed_at = t
                if last_at is not None and changed_at < last_at:
                    changed_at = last_at
                session.add(
                    ColourChange(
                        box_id=box.id,
                        colour=ev.colour,
                        previous_colour=colour,
                        changed_at=changed_at,
                        recorded_at=dropped.get((ev.colour, changed_at), now),
                        rules_version=rules.version,
                        reasons=[{k: r[k] for k in _REASON_KEYS} for r in ev.reasons],
                    )
                )
                colour, last_at = ev.colour, changed_at
            for candidate in ev.facts.get("next_check_candidates", []):
                if candidate is not None and t < candidate < now:
                    heapq.heappush(moments, candidate)
            previous_t = t
    finally:
        if info_before is None:
            session.info.pop(REPLAY_KEY, None)
        else:
            session.info[REPLAY_KEY] = info_before
    # Now, from the stored state, as every read evaluates it.
    ev = _evaluate_boxes(session, [box], now, None, rules)[box.id]
    if ev.colour != colour:
        changed_at = max(now, last_at or now)
        session.add(
            ColourChange(
                box_id=box.id,
                colour=ev.colour,
                previous_colour=colour,
                changed_at=changed_at,
                recorded_at=dropped.get((ev.colour, changed_at), now),
                rules_version=rules.version,
                reasons=[{k: r[k] for k in _REASON_KEYS} for r in ev.reasons],
            )
        )
        colour, last_at = ev.colour, changed_at
    box.colour = ev.colour
    box.colour_since = last_at
    box.colour_reasons = [{k: r[k] for k in _REASON_KEYS} for r in ev.reasons]
    box.colour_next_check_at = ev.next_check_at
    box.colour_evaluated_at = now
    box.revision = (box.revision or 0) + 1
    session.flush()
    return ev


def refresh_due(session: Session, now: datetime, batch: int = 500) -> int:
    """Re-evaluate boxes whose colour may have changed with time alone (their next check time
    has passed). Called before colour-filtered lists and by the periodic sweep command."""
    done = 0
    while True:
        boxes = list(
            session.scalars(
                select(Box).where(Box.colour_next_check_at <= now).order_by(Box.colour_next_check_at).limit(batch)
            )
        )
        if not boxes:
            return done
        refresh_colours(session, boxes, now)
        done += len(boxes)
        if len(boxes) < batch:
            return done


def view_box(session: Session, box: Box, now: datetime | None = None) -> BoxView:
    now = now or utcnow()
    evaluation = refresh_colours(session, [box], now)[box.id]
    return BoxView(box=box, evaluation=evaluation, fill=evaluation.facts.get("fill"))


def view_boxes(session: Session, boxes: list[Box], now: datetime | None = None) -> list[BoxView]:
    now = now or utcnow()
    evaluations = refresh_colours(session, boxes, now)
    return [BoxView(b, evaluations[b.id], evaluations[b.id].facts.get("fill")) for b in boxes]


def history(session: Session, box: Box) -> dict[str, list]:
    changes = list(
        session.scalars(
            select(ColourChange).where(ColourChange.box_id == box.id).order_by(ColourChange.changed_at, ColourChange.id)
        )
    )
    fills = list(session.scalars(select(Fill).where(Fill.box_id == box.id).order_by(Fill.filled_at)))
    events = list(session.scalars(select(BoxEvent).where(BoxEvent.box_id == box.id).order_by(BoxEvent.at, BoxEvent.id)))
    return {"colour_changes": changes, "fills": fills, "events": events}


def days_in_colour(changes: list[ColourChange], colour: str, start: datetime, end: datetime) -> float:
    """Days the box spent in ``colour`` within [start, end), from its colour history."""
    total = 0.0
    for i, change in enumerate(changes):
        until = changes[i + 1].changed_at if i + 1 < len(changes) else end
        if change.colour != colour:
            continue
        a, b = max(change.changed_at, start), min(until, end)
        if b > a:
            total += (b - a).total_seconds() / 86400
    return total


def record_scan_problem(
    session: Session, box_id: int | None, kind: str, detail: dict[str, Any], now: datetime | None = None
) -> None:
    """A forged or superseded label was scanned: kept for the enterprise and the regulator.

    Counted, not written one by one (anyone can repeat a scan 10,000 times): one event per box,
    kind and clock hour (UTC), holding the first scan's detail, ``count`` and ``last_at``."""
    now = now or utcnow()
    hour = now.replace(minute=0, second=0, microsecond=0)
    event = session.scalar(
        select(BoxEvent)
        .where(
            BoxEvent.box_id == box_id,
            BoxEvent.kind == kind,
            BoxEvent.actor == "scan",
            BoxEvent.at >= hour,
        )
        .order_by(BoxEvent.at.desc())
        .limit(1)
    )
    if event is not None:
        event.detail = {
            **(event.detail or {}),
            "count": int((event.detail or {}).get("count", 1)) + 1,
            "last_at": now.isoformat(),
        }
        return
    session.add(BoxEvent(box_id=box_id, kind=kind, at=now, actor="scan", detail={**detail, "count": 1}))
