"""Revisions instead of edits: request, approve, refuse, cancel; the versions they leave behind.

A manifest past its draft, or a ledger record, is never edited in place through the API. A party
requests a revision (the reason is required; the changes are checked by the rules of the original
write, :mod:`.revision_apply`); every other party of the manifest, or for a ledger record the
regulator of the enterprise's jurisdiction, approves or refuses it; one refusal refuses it, the last
approval applies it as a new version (the changes are checked again then, under the stock locks,
since stock and state may have moved meanwhile). The requester may cancel it while it is pending.
One pending revision per manifest or record at a time: two corrections never race.

No Flask here; the rows are audited by :mod:`app.audit.recorder` like every other table (a
manifest's revisions and approvals carry ``manifest_id``, so they are in the manifest's trail).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, false, or_, select, true
from sqlalchemy.orm import Session

from app.accounts.models import Organization, OrganizationRole
from app.accounts.services import Principal, enterprise_scope
from app.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.common.timeutil import utcnow
from app.ledger.models import LedgerRecord, Manifest
from app.ledger.revision_models import ApprovalState, Revision, RevisionApproval, RevisionState, RevisionTarget
from app.ledger.services.revision_apply import (
    apply_manifest_changes,
    check_manifest_changes,
    manifest_content,
    record_content,
    stock_shortfall,
)
from app.ledger.services.revision_records import apply_record_changes, check_record_changes
from app.ledger.services.steps import _event, _lock_manifest, party_of

REGULATOR_STATES = (RevisionState.PENDING, RevisionState.APPROVED)


def _reason(data: dict[str, Any]) -> str:
    reason = (data.get("reason") or "").strip()
    if not reason:
        raise InvalidInput.field("reason", "required: why the record is wrong")
    if len(reason) > 2000:
        raise InvalidInput.field("reason", "at most 2000 characters")
    return reason


def _no_pending(session: Session, **target: int) -> None:
    key, value = next(iter(target.items()))
    found = session.scalar(
        select(Revision.id).where(getattr(Revision, key) == value, Revision.state == RevisionState.PENDING)
    )
    if found is not None:
        raise Conflict(
            f"已有待审批的更正申请 {found} (revision {found} is pending: decide or cancel it first)", pending=found
        )


def _requester(actor: Principal) -> Organization:
    if actor.is_device or actor.organization is None or actor.user is None:
        raise Forbidden("只有联单或台账的当事单位可以申请更正 (only a party requests a revision)")
    return actor.organization


def _new(
    session: Session, actor: Principal, target: RevisionTarget, reason: str, changes: dict, base: int, now: datetime
) -> Revision:
    org = _requester(actor)
    assert actor.user is not None  # _requester
    return Revision(
        target=target,
        reason=reason,
        changes=changes,
        base_version=base,
        requested_by_user_id=actor.user.id,
        requested_by_org_id=org.id,
        requested_by=actor.label,
        requested_at=now,
        state=RevisionState.PENDING,
    )


def request_manifest_revision(
    session: Session, actor: Principal, manifest: Manifest, data: dict[str, Any], now: datetime | None = None
) -> Revision:
    now = now or utcnow()
    org = _requester(actor)
    if not party_of(actor, manifest):
        raise Forbidden("只有本联单的当事单位可以申请更正 (only the manifest's parties request its revision)")
    reason = _reason(data)
    _no_pending(session, manifest_id=manifest.id)
    changes = check_manifest_changes(session, manifest, data.get("changes") or {}, now)
    short = stock_shortfall(session, manifest, changes)
    if short:
        raise Conflict("库存不足，不能按此更正 (not enough stock for the corrected quantities)", errors=short)
    revision = _new(session, actor, RevisionTarget.MANIFEST, reason, changes, manifest.version or 1, now)
    revision.manifest_id = manifest.id
    revision.enterprise_id = manifest.consignor_id
    parties: dict[int, str] = {}
    for party, org_id in (
        ("consignor", manifest.consignor_id),
        ("carrier", manifest.carrier_id),
        ("receiver", manifest.receiver_id),
        ("carrier", changes.get("carrier_id")),  # the party named by the correction agrees too
        ("receiver", changes.get("receiver_id")),
    ):
        if org_id is not None and org_id != org.id:
            parties.setdefault(org_id, party)
    for org_id, party in parties.items():
        other = session.get(Organization, org_id)
        revision.approvals.append(
            RevisionApproval(
                manifest_id=manifest.id,
                party=party,
                organization_id=org_id,
                organization_name=other.name if other else "",
                state=ApprovalState.PENDING,
            )
        )
    session.add(revision)
    session.flush()
    return revision


def jurisdiction_regulator(session: Session, enterprise: Organization) -> Organization | None:
    """The county's regulator of the enterprise, else the city's (a regulator without a county)."""
    regulators = list(
        session.scalars(
            select(Organization)
            .join(OrganizationRole, OrganizationRole.organization_id == Organization.id)
            .where(OrganizationRole.role == "regulator")
            .order_by(Organization.id)
        )
    )
    county = [r for r in regulators if enterprise.county_code and r.county_code == enterprise.county_code]
    city = [r for r in regulators if r.county_code is None]
    return next(iter(county or city), None)


def get_record(session: Session, actor: Principal, record_id: int) -> LedgerRecord:
    enterprises = select(Organization.id).where(enterprise_scope(actor))
    record = session.scalar(
        select(LedgerRecord).where(LedgerRecord.id == record_id, LedgerRecord.enterprise_id.in_(enterprises))
    )
    if record is None:
        raise NotFound(f"台账记录 {record_id} 不存在或无权查看 (ledger record {record_id} not found)")
    return record


def request_record_revision(
    session: Session, actor: Principal, record: LedgerRecord, data: dict[str, Any], now: datetime | None = None
) -> Revision:
    now = now or utcnow()
    org = _requester(actor)
    if org.id != record.enterprise_id:
        raise Forbidden("只有产生单位可以申请更正本单位的台账 (only the enterprise requests its ledger's revision)")
    reason = _reason(data)
    _no_pending(session, record_id=record.id)
    changes = check_record_changes(record, data.get("changes") or {})
    regulator = jurisdiction_regulator(session, record.enterprise)
    if regulator is None:
        raise Conflict("辖区内没有生态环境主管部门可以审批 (no regulator of the enterprise's jurisdiction)")
    revision = _new(session, actor, RevisionTarget.LEDGER_RECORD, reason, changes, record.version or 1, now)
    revision.record_id = record.id
    revision.enterprise_id = record.enterprise_id
    revision.approvals.append(
        RevisionApproval(
            party="regulator",
            organization_id=regulator.id,
            organization_name=regulator.name,
            state=ApprovalState.PENDING,
        )
    )
    session.add(revision)
    session.flush()
    return revision


# ---------------------------------------------------------------- reading


def revision_scope(actor: Principal):
    """Parties see the revisions they take part in; regulators (and park administrations) the
    pending and approved ones of the enterprises in their jurisdiction."""
    if actor.is_operator:
        return true()
    org = actor.organization
    if org is None or actor.is_device:
        return false()
    mine = or_(
        Revision.requested_by_org_id == org.id,
        Revision.enterprise_id == org.id,
        exists().where(RevisionApproval.revision_id == Revision.id, RevisionApproval.organization_id == org.id),
    )
    jurisdiction = Revision.enterprise_id.in_(select(Organization.id).where(enterprise_scope(actor)))
    return or_(mine, jurisdiction & Revision.state.in_(REGULATOR_STATES))


def list_revisions(
    session: Session,
    actor: Principal,
    *,
    state: str | None = None,
    target: str | None = None,
    enterprise: int | None = None,
    manifest_id: int | None = None,
    record_id: int | None = None,
):
    query = select(Revision).where(revision_scope(actor))
    if state:
        query = query.where(Revision.state == state)
    if target:
        query = query.where(Revision.target == target)
    if enterprise:
        query = query.where(Revision.enterprise_id == enterprise)
    if manifest_id:
        query = query.where(Revision.manifest_id == manifest_id)
    if record_id:
        query = query.where(Revision.record_id == record_id)
    return query.order_by(Revision.requested_at.desc(), Revision.id.desc())


def get_revision(session: Session, actor: Principal, revision_id: int) -> Revision:
    revision = session.scalar(select(Revision).where(Revision.id == revision_id, revision_scope(actor)))
    if revision is None:
        raise NotFound(f"更正申请 {revision_id} 不存在或无权查看 (revision {revision_id} not found)")
    return revision


def pending_approval(actor: Principal, revision: Revision) -> RevisionApproval | None:
    """The approval row ``actor`` answers for, while it and the revision are pending."""
    org = actor.organization
    if org is None or actor.is_device or revision.state != RevisionState.PENDING:
        return None
    return next(
        (a for a in revision.approvals if a.organization_id == org.id and a.state == ApprovalState.PENDING), None
    )


# ---------------------------------------------------------------- deciding


def _lock_revision(session: Session, revision: Revision) -> Revision:
    """Decisions on one revision serialise (the target's lock is taken as well when applying)."""
    from app.ledger.locking import acquire_write_lock

    acquire_write_lock(session)
    session.scalars(
        select(Revision).where(Revision.id == revision.id).with_for_update().execution_options(populate_existing=True)
    ).one()
    session.refresh(revision, ["approvals"])
    return revision


def _decider(session: Session, actor: Principal, revision: Revision, verb: str) -> RevisionApproval:
    _lock_revision(session, revision)
    if revision.state != RevisionState.PENDING:
        done = {"approved": "批准", "refused": "驳回", "cancelled": "撤回"}[revision.state]
        raise Conflict(
            f"更正申请 {revision.id} 已{done} (revision is {revision.state}; only a pending one can be {verb})",
            state_now=str(revision.state),
        )
    approval = pending_approval(actor, revision)
    if approval is None:
        org = actor.organization
        if org is not None and any(a.organization_id == org.id for a in revision.approvals):
            raise Conflict(f"本单位已答复更正申请 {revision.id} (your organisation has answered already)")
        raise Forbidden("只有需要审批的当事单位或主管部门可以答复 (only the parties asked to approve may decide)")
    return approval


def _answer(approval: RevisionApproval, actor: Principal, state: ApprovalState, note: str, now: datetime) -> None:
    approval.state = state
    approval.decided_at = now
    approval.decided_by_user_id = actor.user.id if actor.user else None
    approval.decided_by = actor.label
    approval.note = note


def approve(
    session: Session,
    actor: Principal,
    revision: Revision,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Revision:
    now = now or utcnow()
    approval = _decider(session, actor, revision, "approved")
    _answer(approval, actor, ApprovalState.APPROVED, ((data or {}).get("note") or "").strip()[:2000], now)
    if all(a.state == ApprovalState.APPROVED for a in revision.approvals):
        _apply(session, actor, revision, approval.party, now)
    session.flush()
    return revision


def _apply(session: Session, actor: Principal, revision: Revision, party: str, now: datetime) -> None:
    if revision.target == RevisionTarget.MANIFEST:
        manifest = session.get(Manifest, revision.manifest_id)
        assert manifest is not None  # a foreign key
        _lock_manifest(session, manifest)
        if (manifest.version or 1) != revision.base_version:
            raise Conflict("联单已有新版本，请重新申请 (the manifest has a newer version: request again)")
        revision.before = manifest_content(manifest)
        apply_manifest_changes(session, actor, manifest, revision.changes, now)
        manifest.version = (manifest.version or 1) + 1
        session.flush()
        session.refresh(manifest, ["lines"])
        revision.after = manifest_content(manifest)
        revision.version = manifest.version
        _event(
            session,
            manifest,
            actor,
            "revise",
            manifest.status,
            now,
            party,
            revision_id=revision.id,
            version=manifest.version,
            requested_by=revision.requested_by,
            reason=revision.reason,
        )
    else:
        record = session.get(LedgerRecord, revision.record_id)
        assert record is not None  # a foreign key
        if (record.version or 1) != revision.base_version:
            raise Conflict("台账记录已有新版本，请重新申请 (the record has a newer version: request again)")
        revision.before = record_content(record)
        apply_record_changes(session, record, revision.changes, now)
        session.flush()
        revision.after = record_content(record)
        revision.version = record.version
    revision.state = RevisionState.APPROVED
    revision.decided_at = now
    revision.decided_by = actor.label


def refuse(
    session: Session, actor: Principal, revision: Revision, data: dict[str, Any], now: datetime | None = None
) -> Revision:
    now = now or utcnow()
    note = (data.get("note") or data.get("reason") or "").strip()
    approval = _decider(session, actor, revision, "refused")
    if not note:
        raise InvalidInput.field("note", "required: why the correction is refused")
    _answer(approval, actor, ApprovalState.REFUSED, note[:2000], now)
    revision.state = RevisionState.REFUSED
    revision.decided_at = now
    revision.decided_by = actor.label
    session.flush()
    return revision


def cancel(session: Session, actor: Principal, revision: Revision, now: datetime | None = None) -> Revision:
    now = now or utcnow()
    _lock_revision(session, revision)
    if actor.user is None or revision.requested_by_user_id != actor.user.id:
        raise Forbidden("只有申请人可以撤回更正申请 (only the requester cancels a revision)")
    if revision.state != RevisionState.PENDING:
        raise Conflict(
            f"更正申请 {revision.id} 不在待审批状态 (revision is {revision.state})", state_now=str(revision.state)
        )
    revision.state = RevisionState.CANCELLED
    revision.decided_at = now
    revision.decided_by = actor.label
    session.flush()
    return revision
