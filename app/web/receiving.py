"""The receiver's pages (接受人 / 再生单位): what is on its way and waiting for processing, the
receipt of a manifest per line (weighed kg; accept, accept in part or refuse, with a reason; the
whole shipment refused), a review of the discrepancy against the declared quantity and the
tolerance before the receipt is recorded, then the 利用/处置方式 per accepted line.

Thin: the forms are read here, the rules are the ledger's step services
(:func:`app.ledger.services.receive`, ``reject``, ``process``). Each step's POST ends in one
small function (``_record_receipt``, ``_record_refusal``, ``_record_processing``) that calls the
service, so that what a step adds later (e.g. a signature) has one place to go.

Only the manifest's receiver may open these pages: anyone else gets "not found" (404), as the
API answers another tenant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from marshmallow import ValidationError

from app.accounts.services import Principal
from app.audit.signing_forms import signature_from_form
from app.common.auth import current_principal
from app.common.confirmations import ConfirmationRequired
from app.common.errors import DomainError, InvalidInput, NotFound
from app.common.pagination import CappedCount, count_upto
from app.common.timeutil import utcnow
from app.extensions import db
from app.ledger import services as ledger_services
from app.ledger.models import Manifest
from app.ledger.schemas import ReceiveLineIn, RejectIn
from app.translations import localise_error, localise_message
from app.web.form_tokens import user_fields
from app.web.names import flag_names

bp = Blueprint("receiving", __name__, template_folder="../templates")

RECEIVER_ROLES = ("receiver", "regenerator")
DECISIONS = ("accept", "partial", "refuse")
QUEUE_SHOWN = 50  # cards per work queue on /receiving (the rest through the manifests list)
Errors = dict[str, list[str]]


def decision_names() -> dict[str, str]:
    return {"accept": _("全部接受"), "partial": _("部分接受"), "refuse": _("拒收本行")}


def _not_found(detail: str):
    return render_template("error.html", status=404, title=_("未找到"), detail=detail), 404


def _is_receiver(principal: Principal) -> bool:
    org = principal.organization
    return org is not None and not principal.is_device and any(org.has_role(r) for r in RECEIVER_ROLES)


def _receiver_manifest(principal: Principal, number: str) -> Manifest | None:
    """The manifest if the signed-in organisation is its receiver; else None (a 404 page)."""
    try:
        manifest = ledger_services.get_manifest(db.session(), principal, number)
    except NotFound:
        return None
    return manifest if "receiver" in ledger_services.party_of(principal, manifest) else None


def _messages(messages: Any) -> list[str]:
    items = messages if isinstance(messages, list) else [messages]
    return [localise_message(str(m)) for m in items if isinstance(m, str)]


def _signed_in() -> Principal:
    principal = current_principal()  # login_required: never None here
    assert principal is not None
    return principal


# ---------------------------------------------------------------- the incoming list


@bp.route("/receiving")
@login_required
def incoming():
    principal = _signed_in()
    if not _is_receiver(principal):
        return render_template(
            "error.html", status=403, title=_("无权访问"), detail=_("只有接受人或再生单位可以接收联单。")
        ), 403
    now = utcnow()

    def query(status: str):
        return ledger_services.list_manifests(db.session(), principal, status=status, party="receiver", now=now)

    def listed(status: str, limit: int) -> list[dict[str, Any]]:
        return [_card(m, now) for m in db.session().scalars(query(status).limit(limit))]

    def counted(status: str) -> CappedCount:  # "1,000+" past the cap: a city's incinerator receives thousands
        return count_upto(db.session(), query(status))

    # A work queue, not a list to page through: its first QUEUE_SHOWN cards, with the count and,
    # when there are more, a link to the manifests list (keyset pages) with the same status. The
    # recent ones are the latest few by design.
    return render_template(
        "receiving_list.html",
        to_receive=listed("in_transit", QUEUE_SHOWN),
        to_receive_total=counted("in_transit"),
        to_process=listed("received", QUEUE_SHOWN),
        to_process_total=counted("received"),
        recent=listed("closed", 10) + listed("rejected", 10),
    )


def _card(manifest: Manifest, now) -> dict[str, Any]:
    flags = ["overdue"] if manifest.is_overdue(now) else []
    if manifest.discrepant:
        flags.append("discrepant")
    return {
        "m": manifest,
        "shipped_kg": sum((line.quantity_kg for line in manifest.lines), Decimal(0)),
        "flags": [(f, flag_names()[f]) for f in flags],
    }


# ---------------------------------------------------------------- the receipt


@dataclass
class LineEntry:
    """What was typed for one line, and what it means once read."""

    line: Any
    received: str = ""
    decision: str = "accept"
    accepted: str = ""
    reason: str = ""
    received_kg: float | None = None
    accepted_kg: float | None = None
    deviation: float | None = None
    beyond_tolerance: bool = False
    errors: Errors = field(default_factory=dict)

    @property
    def returned_kg(self) -> float | None:
        if self.received_kg is None or self.accepted_kg is None:
            return None
        return self.received_kg - self.accepted_kg


def _read_lines(manifest: Manifest, form: dict[str, str], tolerance: float) -> tuple[list[LineEntry], Errors]:
    """Every line's entry, checked as the API checks it (the plausible range of a weighed kg),
    plus what the page's choices ask for (a reason for a part or a refusal). Field errors are
    keyed by the form's field names (``received_kg_1``…)."""
    entries, errors = [], {}
    for line in manifest.lines:
        no = line.line_no
        entry = LineEntry(
            line=line,
            received=form.get(f"received_kg_{no}", "").strip(),
            decision=form.get(f"decision_{no}", "accept"),
            accepted=form.get(f"accepted_kg_{no}", "").strip(),
            reason=form.get(f"reason_{no}", "").strip(),
        )
        if entry.decision not in DECISIONS:
            entry.decision = "accept"
        raw: dict[str, Any] = {"line_no": no, "received_kg": entry.received or None, "refusal_reason": entry.reason}
        if entry.decision == "partial" and entry.accepted:
            raw["accepted_kg"] = entry.accepted
        try:
            loaded = ReceiveLineIn().load(raw)
        except ValidationError as exc:
            loaded = {}
            for name, messages in exc.messages_dict.items():
                key = {"refusal_reason": "reason"}.get(name, name)
                errors[f"{key}_{no}"] = _messages(messages)
        if "received_kg" in loaded:
            entry.received_kg = loaded["received_kg"]
            entry.accepted_kg = {"accept": loaded["received_kg"], "refuse": 0.0}.get(
                entry.decision, loaded.get("accepted_kg")
            )
            if entry.decision == "partial" and entry.accepted_kg is not None:
                if entry.accepted_kg >= entry.received_kg:
                    errors[f"accepted_kg_{no}"] = [_("部分接受时，接受量应小于称重量")]
                elif entry.accepted_kg <= 0:
                    errors[f"accepted_kg_{no}"] = [_("部分接受时，接受量应大于 0；整行不接受请选“拒收本行”")]
            elif entry.decision == "partial":
                errors[f"accepted_kg_{no}"] = [_("部分接受时请填写接受量")]
            shipped = float(line.quantity_kg)  # a ratio for the page: floats
            entry.deviation = abs(entry.received_kg - shipped) / shipped if shipped else None
            entry.beyond_tolerance = entry.deviation is not None and entry.deviation > tolerance + 1e-9
        if entry.decision != "accept" and not entry.reason:
            errors[f"reason_{no}"] = [_("部分接受或拒收时必须填写原因")]
        entries.append(entry)
    if not errors and all(e.decision == "refuse" for e in entries):
        errors["_"] = [_("所有行都拒收：请使用下方的“整单拒收”。")]
    return entries, errors


def _service_errors(exc: DomainError, entries: list[LineEntry]) -> Errors:
    """The step service's field errors (``lines.0.received_kg``) under the form's names."""
    out: Errors = {}
    for name, messages in (getattr(exc, "errors", None) or {}).items():
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == "lines" and parts[1].isdigit() and int(parts[1]) < len(entries):
            key = {"refusal_reason": "reason"}.get(parts[2], parts[2])
            out.setdefault(f"{key}_{entries[int(parts[1])].line.line_no}", []).extend(_messages(messages))
        else:
            out.setdefault("_", []).extend(_messages(messages))
    return out or {"_": [localise_error(exc)]}


def _receipt_data(entries: list[LineEntry]) -> dict[str, Any]:
    return {
        "lines": [
            {
                "line_no": e.line.line_no,
                "received_kg": e.received_kg,
                "accepted_kg": e.accepted_kg,
                "refusal_reason": e.reason if e.decision != "accept" else "",
            }
            for e in entries
        ]
    }


def _record_receipt(principal: Principal, manifest: Manifest, data: dict[str, Any]) -> Manifest:
    """The receipt's one call of the step service (a POST confirmed after its review)."""
    signature = signature_from_form(db.session(), current_user, request.form, manifest)
    return ledger_services.receive(db.session(), principal, manifest, data, utcnow(), signature=signature)


def _record_refusal(principal: Principal, manifest: Manifest, data: dict[str, Any]) -> Manifest:
    """The whole shipment refused (拒收): the step service's one call."""
    signature = signature_from_form(db.session(), current_user, request.form, manifest)
    return ledger_services.reject(db.session(), principal, manifest, data, utcnow(), signature=signature)


def _receipt_page(
    manifest: Manifest,
    entries,
    errors: Errors,
    mode: str,
    tolerance: float,
    status: int = 200,
    needs_confirmation: bool = False,
):
    return render_template(
        "receiving_form.html",
        needs_confirmation=needs_confirmation,
        m=manifest,
        entries=entries,
        errors=errors,
        mode=mode,
        tolerance=tolerance,
        decisions=decision_names(),
        reject_reason=request.form.get("reject_reason", "") if request.method == "POST" else "",
    ), status


@bp.route("/receiving/<number>", methods=["GET", "POST"])
@login_required
def receive(number):
    principal = _signed_in()
    manifest = _receiver_manifest(principal, number)
    if manifest is None:
        return _not_found(_("联单 %(number)s 不存在，或您不是它的接受人。", number=number))
    if manifest.status == "received":
        return redirect(url_for("receiving.process", number=number))
    if manifest.status != "in_transit":
        return redirect(url_for("pages.manifest_detail", number=number))
    tolerance = float(ledger_services.rules(db.session()).quantity_tolerance)
    if request.method == "GET":
        return _receipt_page(manifest, [LineEntry(line=line) for line in manifest.lines], {}, "edit", tolerance)
    form = user_fields(request.form)
    entries, errors = _read_lines(manifest, form, tolerance)
    # The buttons: review (what will be stored), edit (back to the form), confirm (store it).
    step = next((name for name in ("confirm", "edit") if request.form.get(name)), "review")
    if errors or step == "edit":
        return _receipt_page(manifest, entries, errors, "edit", tolerance, 422 if errors else 200)
    if step != "confirm":
        # What will be stored, with each line's difference from the declared quantity, before it is.
        return _receipt_page(manifest, entries, {}, "review", tolerance)
    data = _receipt_data(entries)
    if request.form.get("confirm_unusual"):
        data["confirm_unusual"] = True  # the receiver ticked 我已核实以上数值 under the warnings
    try:
        _record_receipt(principal, manifest, data)
    except ConfirmationRequired as exc:
        # Possible but unusual (a weight far above the one shipped): the review again, with the
        # warnings beside the lines and the box to confirm them.
        errors = _service_errors(exc, entries)
        return _receipt_page(manifest, entries, errors, "review", tolerance, 422, needs_confirmation=True)
    except DomainError as exc:
        return _receipt_page(manifest, entries, _service_errors(exc, entries), "edit", tolerance, 422)
    flash(_("联单 %(number)s 已接收（%(result)s）。请登记利用/处置方式。", number=number, result=_acceptance(manifest)))
    return redirect(url_for("receiving.process", number=number))


def _acceptance(manifest: Manifest) -> str:
    return {"full": _("全部接收"), "partial": _("部分接收"), "refused": _("拒收")}.get(manifest.acceptance or "", "")


@bp.route("/receiving/<number>/reject", methods=["POST"])
@login_required
def reject(number):
    principal = _signed_in()
    manifest = _receiver_manifest(principal, number)
    if manifest is None:
        return _not_found(_("联单 %(number)s 不存在，或您不是它的接受人。", number=number))
    tolerance = float(ledger_services.rules(db.session()).quantity_tolerance)
    entries = [LineEntry(line=line) for line in manifest.lines]
    form = user_fields(request.form)
    try:
        data = RejectIn().load({"reason": form.get("reject_reason", "")})
        _record_refusal(principal, manifest, data)
    except ValidationError as exc:
        errors = {"reject_reason": _messages(exc.messages_dict.get("reason", [_("必填")]))}
        return _receipt_page(manifest, entries, errors, "edit", tolerance, 422)
    except InvalidInput as exc:
        # A missing signature is the form's, not the reason's.
        key = "_" if "signature" in (getattr(exc, "errors", None) or {}) else "reject_reason"
        errors = {key: [localise_error(exc)]}
        return _receipt_page(manifest, entries, errors, "edit", tolerance, 422)
    except DomainError as exc:
        return _receipt_page(manifest, entries, {"_": [localise_error(exc)]}, "edit", tolerance, 422)
    flash(_("联单 %(number)s 已整单拒收，废物退回移出人库存。", number=number))
    return redirect(url_for("receiving.incoming"))


# ---------------------------------------------------------------- the treatment method


def _record_processing(principal: Principal, manifest: Manifest, data: dict[str, Any]) -> Manifest:
    """The 利用/处置方式 per line: the step service's one call (the manifest then closes)."""
    signature = signature_from_form(db.session(), current_user, request.form, manifest)
    return ledger_services.process(db.session(), principal, manifest, data, utcnow(), signature=signature)


@bp.route("/receiving/<number>/process", methods=["GET", "POST"])
@login_required
def process(number):
    principal = _signed_in()
    manifest = _receiver_manifest(principal, number)
    if manifest is None:
        return _not_found(_("联单 %(number)s 不存在，或您不是它的接受人。", number=number))
    if manifest.status == "in_transit":
        return redirect(url_for("receiving.receive", number=number))
    if manifest.status != "received":
        return redirect(url_for("pages.manifest_detail", number=number))
    methods = ledger_services.methods(db.session())
    accepted = [line for line in manifest.lines if (line.accepted_kg or 0) > 0]
    chosen = {line.line_no: request.form.get(f"method_{line.line_no}", "") for line in accepted}
    errors: Errors = {}
    status = 200
    if request.method == "POST":
        for no, code in chosen.items():
            if code not in methods:
                errors[f"method_{no}"] = [_("请选择利用/处置方式")]
        if not errors:
            data = {"lines": [{"line_no": no, "method_code": code} for no, code in chosen.items()]}
            try:
                _record_processing(principal, manifest, data)
            except DomainError as exc:
                errors = {"_": [localise_error(exc)]}
            else:
                flash(_("联单 %(number)s 已登记利用/处置方式并办结。", number=number))
                return redirect(url_for("pages.manifest_detail", number=number))
        status = 422
    return render_template(
        "receiving_process.html",
        m=manifest,
        accepted=accepted,
        refused=[line for line in manifest.lines if (line.accepted_kg or 0) <= 0],
        methods=methods,
        chosen=chosen,
        errors=errors,
    ), status


BLUEPRINTS = (bp,)
