"""Pages of revisions (更正申请): the manifest page's part (``_manifest_revisions.html``: the
request form and the revisions with their decisions) and the list ``/revisions`` (regulators:
the pending and approved ones of their jurisdiction; parties: their own).

Thin: the forms post here, the services decide (:mod:`app.ledger.services.revisions`); a refused
request rolls back and comes back to the page with the reason in the page's language.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from app.common.auth import require_user
from app.common.errors import DomainError, InvalidInput
from app.common.pagination import count_upto
from app.common.tx import rollback_request
from app.extensions import db
from app.ledger.models import RECEIVED_STATES, Manifest
from app.ledger.revision_models import Revision, RevisionState, RevisionTarget
from app.ledger.services import get_manifest, party_of
from app.ledger.services import revisions as services
from app.ledger.services.revision_apply import REVISABLE_STATES
from app.translations import localise_error
from app.web import paging
from app.web.form_tokens import user_fields

bp = Blueprint("revision_pages", __name__, template_folder="../templates")
PER_PAGE = 50


def revision_state_names() -> dict[str, str]:
    return {"pending": _("待审批"), "approved": _("已批准"), "refused": _("已驳回"), "cancelled": _("已撤回")}


def change_labels() -> dict[str, str]:
    return {
        "carrier_id": _("承运人"),
        "receiver_id": _("接受人"),
        "route": _("运输路线"),
        "note": _("备注"),
        "vehicle_plate": _("车牌号"),
        "driver_name": _("驾驶员"),
        "driver_phone": _("驾驶员电话"),
        "quantity_kg": _("数量 (kg)"),
        "received_kg": _("接收称重 (kg)"),
        "accepted_kg": _("接受 (kg)"),
        "refusal_reason": _("拒收原因"),
        "packaging": _("包装"),
        "physical_form": _("形态"),
        "waste_name": _("废物名称"),
        "facility_code": _("产生设施编码"),
        "container_type": _("容器类型"),
        "container_count": _("容器数量"),
        "handler": _("经办人"),
    }


def change_lines(changes: dict[str, Any]) -> list[str]:
    """The proposed changes as short lines in the page's language ("第 1 行 数量 (kg) → 1600.000")."""
    labels = change_labels()
    out = [f"{labels.get(k, k)} → {v}" for k, v in changes.items() if k != "lines"]
    for line in changes.get("lines", []):
        for k, v in line.items():
            if k != "line_no":
                out.append(_("第 %(no)s 行 %(field)s → %(value)s", no=line["line_no"], field=labels.get(k, k), value=v))
    return out


def _row(principal, revision: Revision) -> dict[str, Any]:
    return {
        "r": revision,
        "changes": change_lines(revision.changes or {}),
        "can_decide": services.pending_approval(principal, revision) is not None,
        "can_cancel": revision.state == RevisionState.PENDING
        and principal.user is not None
        and revision.requested_by_user_id == principal.user.id,
    }


@bp.app_context_processor
def _helpers():
    return {"manifest_revisions": manifest_revisions, "revision_state_names": revision_state_names}


def manifest_revisions(manifest: Manifest) -> dict[str, Any]:
    """What ``_manifest_revisions.html`` shows for the signed-in user on a manifest's page."""
    principal = require_user()
    query = services.list_revisions(db.session(), principal, manifest_id=manifest.id)
    rows = [_row(principal, r) for r in db.session().scalars(query.limit(PER_PAGE))]
    return {
        "rows": rows,
        "can_request": bool(party_of(principal, manifest))
        and manifest.status in REVISABLE_STATES
        and not any(row["r"].state == RevisionState.PENDING for row in rows),
        "weighed": manifest.status in RECEIVED_STATES,
        "error": request.args.get("revision_error"),
    }


def _line_changes(manifest: Manifest, form: dict[str, str]) -> list[dict[str, Any]]:
    """Only what the person changed: a field equal to the current value is no change."""
    out = []
    for line in manifest.lines:
        change: dict[str, Any] = {"line_no": line.line_no}
        for name in ("quantity_kg", "received_kg", "accepted_kg"):
            raw = form.get(f"line{line.line_no}_{name}")
            if raw is None:
                continue
            try:
                value = float(raw)
            except ValueError:
                raise InvalidInput.field(f"lines.{line.line_no - 1}.{name}", "Not a valid number.") from None
            current = getattr(line, name)
            if current is None or abs(value - float(current)) > 1e-9:
                change[name] = value
        for name in ("packaging", "refusal_reason"):
            raw = form.get(f"line{line.line_no}_{name}")
            if raw is not None and raw.strip() != (getattr(line, name) or ""):
                change[name] = raw.strip()
        if len(change) > 1:
            out.append(change)
    return out


@bp.route("/manifests/<number>/revisions", methods=["POST"])
@login_required
def request_revision(number):
    principal = require_user()
    manifest = get_manifest(db.session(), principal, number)
    form = user_fields(request.form)
    try:
        changes: dict[str, Any] = {
            name: form[name].strip()
            for name in ("route", "note")
            if name in form and form[name].strip() != getattr(manifest, name)
        }
        lines = _line_changes(manifest, form)
        if lines:
            changes["lines"] = lines
        services.request_manifest_revision(
            db.session(), principal, manifest, {"reason": form.get("reason", ""), "changes": changes}
        )
    except DomainError as exc:
        rollback_request(db.session())  # answered with a redirect (< 400): nothing of it may be stored
        return redirect(
            url_for("pages.manifest_detail", number=number, revision_error=localise_error(exc)) + "#revisions"
        )
    return redirect(url_for("pages.manifest_detail", number=number) + "#revisions")


@bp.route("/revisions/<int:revision_id>/<any(approve, refuse, cancel):decision>", methods=["POST"])
@login_required
def decide(revision_id, decision):
    principal = require_user()
    revision = services.get_revision(db.session(), principal, revision_id)
    number = revision.manifest.number if revision.manifest else None
    form = user_fields(request.form)
    try:
        if decision == "approve":
            services.approve(db.session(), principal, revision, {"note": form.get("note", "")})
        elif decision == "refuse":
            services.refuse(db.session(), principal, revision, {"note": form.get("note", "")})
        else:
            services.cancel(db.session(), principal, revision)
        error = None
    except DomainError as exc:
        rollback_request(db.session())
        error = localise_error(exc)
    if request.form.get("back") == "list" or number is None:
        return redirect(url_for("revision_pages.revisions", revision_error=error))
    return redirect(url_for("pages.manifest_detail", number=number, revision_error=error) + "#revisions")


@bp.route("/revisions")
@login_required
def revisions():
    principal = require_user()
    state = request.args.get("state") or None
    state = state if state in tuple(RevisionState) else None
    target = request.args.get("target") or None
    target = target if target in tuple(RevisionTarget) else None
    query = services.list_revisions(db.session(), principal, state=state, target=target)
    total = count_upto(db.session(), query)  # "1,000+" past the cap (app.common.pagination)
    page = paging.keyset_page(query, PER_PAGE)
    return render_template(
        "revisions.html",
        rows=[_row(principal, r) for r in page.items],
        total=total,
        state=state,
        target=target,
        page=page,
        target_names={"manifest": _("联单"), "ledger_record": _("台账记录")},
        error=request.args.get("revision_error"),
    )
