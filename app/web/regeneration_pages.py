"""The regeneration plant's pages (再生单位): its batches with what remains, a new batch from the
received waste carbon still available, a batch's page, and the label sheet for the bags of
regenerated carbon.

Thin: :func:`app.regeneration.services.record_batch` decides; the form is read with the API's
schema (:class:`app.regeneration.schemas.BatchIn`), so the plausible ranges are the same. The
POST ends in one small function (``_record_batch``).

A batch is shown to those the service lets see it (the plant, regulators and parks over it).
Its printed label's QR code carries a signature (``s``): with it, any signed-in enterprise or
carbon service holding the bag sees the batch's summary and may fill a box from it.
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from marshmallow import ValidationError

from app.accounts.services import Principal
from app.boxes import codes as box_codes
from app.common.auth import current_principal
from app.common.errors import DomainError, NotFound
from app.common.timeutil import local_date, utcnow
from app.extensions import db
from app.labels.batch_pdf import BatchLabel, batch_label_pdf
from app.labels.signing import sign_label, verify_label
from app.ledger import services as ledger_services
from app.regeneration import services as regeneration_services
from app.regeneration.models import RegenerationBatch
from app.regeneration.schemas import BatchIn
from app.translations import localise_error, localise_message
from app.web import paging
from app.web.form_tokens import user_fields

bp = Blueprint("regeneration_pages", __name__, template_folder="../templates")

MAX_BAGS = 400
BATCHES_PER_PAGE = 50
Errors = dict[str, list[str]]


def _signed(batch_id: int) -> str:
    return sign_label(current_app.config["SECRET_KEY"], f"regeneration-batch-{batch_id}", 1)


def batch_label_url(batch: RegenerationBatch) -> str:
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return f"{base}{url_for('regeneration_pages.batch', batch_id=batch.id, s=_signed(batch.id))}"


def _is_plant(principal: Principal) -> bool:
    return principal.has_role("regenerator") and not principal.is_device


def _own_plant(principal: Principal, batch: RegenerationBatch) -> bool:
    org = principal.organization
    return _is_plant(principal) and org is not None and org.id == batch.plant_id


def _not_found(batch_id: Any):
    detail = _("再生批次 %(id)s 不存在，或您无权查看。", id=batch_id)
    return render_template("error.html", status=404, title=_("未找到"), detail=detail), 404


def _messages(messages: Any) -> list[str]:
    items = messages if isinstance(messages, list) else [messages]
    return [localise_message(str(m)) for m in items if isinstance(m, str)]


def _signed_in() -> Principal:
    principal = current_principal()  # login_required: never None here
    assert principal is not None
    return principal


# ---------------------------------------------------------------- the list


@bp.route("/regeneration")
@login_required
def batches():
    principal = _signed_in()
    plant = principal.organization.id if _is_plant(principal) and principal.organization else None
    query = regeneration_services.list_batches(db.session(), principal, plant=plant)
    page = paging.keyset_page(query, BATCHES_PER_PAGE)
    return render_template("regeneration_list.html", batches=page.items, page=page, can_record=_is_plant(principal))


# ---------------------------------------------------------------- a new batch


def _batch_body(form: dict[str, str], lines) -> dict[str, Any]:
    """The API's body from the form: one input per line given a quantity (``input_<line id>``)."""
    body: dict[str, Any] = {
        k: form[k] for k in ("batch_no", "produced_on", "method_code", "output_kg", "iodine_mg_g", "note") if k in form
    }
    body["inputs"] = [
        {"manifest_number": line.manifest.number, "line_no": line.line_no, "quantity_kg": form[f"input_{line.id}"]}
        for line in lines
        if form.get(f"input_{line.id}")
    ]
    return body


def _form_errors(messages: dict[str, Any], chosen: list) -> Errors:
    """Schema or service errors (``inputs.0.quantity_kg`` or nested) under the form's names."""
    out: Errors = {}
    for name, value in messages.items():
        if name == "inputs" and isinstance(value, dict):
            for index, inner in value.items():
                for _field, msgs in inner.items() if isinstance(inner, dict) else [("", inner)]:
                    line = chosen[int(index)] if str(index).isdigit() and int(index) < len(chosen) else None
                    out.setdefault(f"input_{line.id}" if line else "inputs", []).extend(_messages(msgs))
            continue
        if name == "inputs":  # none chosen (the schema's "length ≥ 1" of the list, or the service's)
            out["inputs"] = [_("请至少填写一行投入量")]
            continue
        parts = str(name).split(".")
        if parts[0] == "inputs" and len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(chosen):
            out.setdefault(f"input_{chosen[int(parts[1])].id}", []).extend(_messages(value))
        else:
            out.setdefault(str(name) if name != "_schema" else "_", []).extend(_messages(value))
    return out


def _record_batch(principal: Principal, data: dict[str, Any]) -> RegenerationBatch:
    """The new batch: the service's one call."""
    return regeneration_services.record_batch(db.session(), principal, data, utcnow())


@bp.route("/regeneration/new", methods=["GET", "POST"])
@login_required
def new_batch():
    principal = _signed_in()
    if not _is_plant(principal):
        return render_template(
            "error.html", status=403, title=_("无权访问"), detail=_("只有再生单位可以登记再生批次。")
        ), 403
    lines = regeneration_services.available_inputs(db.session(), principal)
    methods = {
        code: m for code, m in ledger_services.methods(db.session()).items() if m.kind == "utilisation"
    }  # regeneration is utilisation
    form = user_fields(request.form) if request.method == "POST" else {}
    errors: Errors = {}
    if request.method == "POST":
        body = _batch_body(form, lines)
        chosen = [line for line in lines if form.get(f"input_{line.id}")]
        try:
            data = BatchIn().load(body)
            batch = _record_batch(principal, data)
        except ValidationError as exc:
            errors = _form_errors(exc.messages_dict, chosen)
        except DomainError as exc:
            errors = _form_errors(getattr(exc, "errors", None) or {}, chosen) or {"_": [localise_error(exc)]}
        else:
            flash(_("再生批次 %(no)s 已登记：产出 %(kg)s kg。", no=batch.batch_no, kg=f"{batch.output_kg:,.1f}"))
            return redirect(url_for("regeneration_pages.batch", batch_id=batch.id))
    return render_template(
        "regeneration_form.html",
        lines=lines,
        methods=methods,
        form=form,
        errors=errors,
        today=local_date(utcnow()).isoformat(),
    ), (422 if errors else 200)


# ---------------------------------------------------------------- a batch and its labels


def _visible_batch(principal: Principal, batch_id: int) -> tuple[RegenerationBatch | None, bool]:
    """(the batch, whether in full): in the service's scope in full; with a valid label
    signature, the summary for whoever holds the bag."""
    try:
        return regeneration_services.get_batch(db.session(), principal, batch_id), True
    except NotFound:
        pass
    signature = request.args.get("s") or ""
    if signature and verify_label(current_app.config["SECRET_KEY"], f"regeneration-batch-{batch_id}", 1, signature):
        return db.session().get(RegenerationBatch, batch_id), False
    return None, False


@bp.route("/regeneration/<int:batch_id>")
@login_required
def batch(batch_id):
    principal = _signed_in()
    found, full = _visible_batch(principal, batch_id)
    if found is None:
        return _not_found(batch_id)
    return render_template(
        "regeneration_batch.html",
        b=found,
        full=full,
        fills=regeneration_services.fills_of_batch(db.session(), found) if full else [],
        is_plant=full and _own_plant(principal, found),
        methods=ledger_services.methods(db.session()),
        default_bags=max(1, math.ceil(float(found.output_kg) / 500)),
        signature=request.args.get("s", ""),
    )


@bp.route("/regeneration/<int:batch_id>/fill")
@login_required
def fill_from_batch(batch_id):
    """From the bag's label to a box's replacement form, with the batch filled in."""
    principal = _signed_in()
    found, _full = _visible_batch(principal, batch_id)
    if found is None:
        return _not_found(batch_id)
    code = box_codes.normalise(request.args.get("code", ""))
    if code is None:
        flash(_("碳箱码无效，请检查后重试。"))
        return redirect(url_for("regeneration_pages.batch", batch_id=batch_id, s=request.args.get("s") or None))
    return redirect(url_for("web.scan", code=code, regeneration_batch=batch_id) + "#fill")


@bp.route("/regeneration/<int:batch_id>/labels.pdf")
@login_required
def batch_labels(batch_id):
    """The bags' label sheet (the plant only): ``bags`` labels, optionally with ``bag_kg``."""
    principal = _signed_in()
    try:
        found = regeneration_services.get_batch(db.session(), principal, batch_id)
    except NotFound:
        return _not_found(batch_id)
    if not _own_plant(principal, found):
        return _not_found(batch_id)
    bags_raw, kg_raw = request.args.get("bags", "1").strip(), request.args.get("bag_kg", "").strip()
    bags = int(bags_raw) if bags_raw.isdigit() and len(bags_raw) < 5 else 0
    try:
        bag_kg = float(kg_raw) if kg_raw else None
    except ValueError:
        bag_kg = -1.0
    if not 1 <= bags <= MAX_BAGS or (bag_kg is not None and not 0 < bag_kg <= 100_000):
        flash(_("袋数应为 1–%(max)s，每袋重量应大于 0。", max=MAX_BAGS))
        return redirect(url_for("regeneration_pages.batch", batch_id=batch_id))
    url = batch_label_url(found)
    labels = [
        BatchLabel(
            url=url,
            batch_id=found.id,
            batch_no=found.batch_no,
            plant=found.plant.name,
            produced_on=found.produced_on.isoformat(),
            iodine_mg_g=found.iodine_mg_g,
            bag=i + 1,
            bags=bags,
            bag_kg=bag_kg,
        )
        for i in range(bags)
    ]
    return Response(
        batch_label_pdf(labels),
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="regenerated-{found.id}.pdf"'},
    )


BLUEPRINTS = (bp,)
