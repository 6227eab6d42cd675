"""The consignor's manifest pages: a manifest from stock (a draft), its submission and
cancellation, and the "待办" list of what each open manifest is waiting on.

Thin: :func:`app.ledger.services.create_manifest`, ``submit`` and ``cancel`` decide. Each step's
POST is handled by one small function (:data:`STEPS`), so the signatures of each step (password
or one-time code) can be added to it alone. A refused step rolls back and returns to the
manifest's page with the reason shown as an error.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from marshmallow import ValidationError
from sqlalchemy.orm import selectinload

from app.accounts.models import Organization
from app.accounts.services import Principal, list_organizations
from app.audit.signing_forms import signature_from_form
from app.common.auth import current_principal, require_user
from app.common.confirmations import ConfirmationRequired
from app.common.errors import DomainError, InvalidInput, NotFound
from app.common.pagination import count_upto
from app.common.timeutil import local_date, utcnow
from app.common.tx import rollback_request
from app.extensions import db
from app.ledger import services as ledger_services
from app.ledger.models import Manifest, ManifestStatus
from app.ledger.schemas import ManifestIn
from app.translations import localise_error
from app.web import paging
from app.web.form_errors import field_messages
from app.web.form_tokens import user_fields

bp = Blueprint("manifest_forms", __name__, template_folder="../templates")

PACKAGINGS = ("吨袋", "编织袋", "铁桶", "塑料桶", "托盘")


def _consignor() -> Principal | None:
    """The signed-in staff of an enterprise (a generator): who may fill in its manifests."""
    principal = require_user()
    org = principal.organization
    if org is None or principal.is_device or not org.has_role("generator"):
        return None
    return principal


def _forbidden():
    detail = _("只有产废企业的人员可以填写联单。")
    return render_template("error.html", status=403, title=_("无权访问"), detail=detail), 403


def consignor_actions(manifest: Manifest) -> list[str]:
    """The steps the signed-in user may take on ``manifest`` as its consignor."""
    principal = current_principal(optional=True)
    if principal is None or "consignor" not in ledger_services.party_of(principal, manifest):
        return []
    return [a for a in STEPS if manifest.status in ledger_services.ACTION_FROM[a]]


def may_create_manifest(enterprise_id: int | None) -> bool:
    principal = current_principal(optional=True)
    if principal is None or principal.is_device or principal.organization is None:
        return False
    org = principal.organization
    return bool(org.id == enterprise_id and org.has_role("generator"))


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"consignor_actions": consignor_actions, "may_create_manifest": may_create_manifest}


# ---------------------------------------------------------------- a manifest from stock


def _parties(principal: Principal, codes: list[str]) -> tuple[list[Organization], list[Organization]]:
    """Carriers holding a valid transport permit; receivers licensed for a waste in stock."""
    today = local_date(utcnow())

    def named(role: str) -> list[Organization]:
        query = list_organizations(db.session(), principal, role=role).order_by(None).order_by(Organization.name)
        return list(db.session().scalars(query))

    carriers = [o for o in named("carrier") if ledger_services.transport_permit(o, today)]
    receivers = {o.id: o for o in named("receiver") + named("regenerator")}
    licensed = [
        o for o in receivers.values() if any(ledger_services.covering_licence(o, c, today) for c in codes) or not codes
    ]
    return carriers, sorted(licensed, key=lambda o: o.name)


def manifest_field_labels(items: list[dict[str, Any]]) -> dict[str, str]:
    labels = {
        "carrier_id": _("承运单位"),
        "receiver_id": _("接受单位"),
        "lines": _("转移的危险废物"),
        "note": _("备注"),
        "_": _("错误"),
    }
    for item in items:
        code = item["waste_code"]
        labels[f"quantity_kg-{code}"] = _("%(code)s 数量 (kg)", code=code)
        labels[f"packaging-{code}"] = _("%(code)s 包装", code=code)
    return labels


def _manifest_body(form: dict[str, str], chosen: list[str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The service's input from the form, and the form's own errors (numbers, required fields)."""
    errors: dict[str, list[str]] = {}
    lines = []
    for code in chosen:
        packaging = form.get(f"packaging-{code}", "").strip()
        if not packaging:
            errors[f"packaging-{code}"] = [_("必填")]
        elif len(packaging) > 60:
            errors[f"packaging-{code}"] = [_("不能超过 %(max)s 个字符", max=60)]
        raw = form.get(f"quantity_kg-{code}", "").strip()
        try:
            quantity = Decimal(raw)
            if not quantity.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            errors[f"quantity_kg-{code}"] = [_("必填") if not raw else _("不是有效的数字")]
            continue
        lines.append({"waste_code": code, "quantity_kg": str(quantity), "packaging": packaging})
    body: dict[str, Any] = {"lines": lines, "note": form.get("note", "")[:2000]}
    for name in ("carrier_id", "receiver_id"):
        value = form.get(name, "")
        if value.isdigit() and len(value) < 10:
            body[name] = int(value)
        else:
            errors[name] = [_("必填")]
    if not chosen:
        errors["lines"] = [_("请至少选择一种库存废物")]
    return body, errors


def _line_errors(errors: dict[str, Any], chosen: list[str]) -> dict[str, list[str]]:
    """The schema and the service name lines by position (``lines.0.quantity_kg``, or nested);
    the form by waste code."""
    renamed: dict[str, Any] = {}
    for name, messages in field_messages(errors).items():
        parts = str(name).split(".")
        if len(parts) == 3 and parts[0] == "lines" and parts[1].isdigit() and int(parts[1]) < len(chosen):
            field = "packaging" if parts[2] == "packaging" else "quantity_kg"
            renamed[f"{field}-{chosen[int(parts[1])]}"] = messages
        else:
            renamed[name] = messages
    return renamed


@bp.route("/manifests/new", methods=["GET", "POST"])
@login_required
def new_manifest():
    principal = _consignor()
    if principal is None or principal.organization is None:
        return _forbidden()
    now = utcnow()
    summary = ledger_services.stock_summary(db.session(), principal, principal.organization.id, now)
    items = [i for i in summary["items"] if i["available_kg"] > 0]
    carriers, receivers = _parties(principal, [i["waste_code"] for i in items])
    errors: dict[str, list[str]] = {}
    needs_confirmation = False
    form = user_fields(request.form) if request.method == "POST" else {}
    available = {i["waste_code"] for i in items}
    chosen = [c for c in request.form.getlist("waste_code") if c in available]
    if request.method == "POST":
        body, errors = _manifest_body(form, chosen)
        if form.get("confirm_unusual"):
            body["confirm_unusual"] = True  # ticked under the warnings of unusual quantities
        if not errors:
            try:
                manifest = ledger_services.create_manifest(db.session(), principal, ManifestIn().load(body), now)
            except ConfirmationRequired as exc:
                errors = _line_errors(exc.errors or {}, chosen) or {"_": [localise_error(exc)]}
                needs_confirmation = True
            except ValidationError as exc:
                errors = _line_errors(exc.messages if isinstance(exc.messages, dict) else {"_": exc.messages}, chosen)
            except InvalidInput as exc:
                errors = _line_errors(exc.errors or {}, chosen) or {"_": [localise_error(exc)]}
            except DomainError as exc:
                errors = {"_": [localise_error(exc)]}
            else:
                flash(_("联单草稿 %(number)s 已保存，核对后请提交。", number=manifest.number))
                return redirect(url_for("pages.manifest_detail", number=manifest.number))
    return render_template(
        "manifest_new.html",
        needs_confirmation=needs_confirmation,
        items=items,
        carriers=carriers,
        receivers=receivers,
        errors=errors,
        form=form,
        chosen=set(chosen) if request.method == "POST" else set(),
        labels=manifest_field_labels(items),
        packagings=PACKAGINGS,
    ), (422 if errors else 200)


# ---------------------------------------------------------------- steps of the consignor


def _submit_step(principal: Principal, manifest: Manifest, form: dict[str, str]) -> str:
    """The consignor's submission, signed by the signed-in person's password (app.audit.signing_forms)."""
    signature = signature_from_form(db.session(), principal.user, form, manifest)
    ledger_services.submit(db.session(), principal, manifest, utcnow(), signature=signature)
    return _("联单 %(number)s 已提交，等待承运人提货。", number=manifest.number)


def _cancel_step(principal: Principal, manifest: Manifest, form: dict[str, str]) -> str:
    ledger_services.cancel(db.session(), principal, manifest, {"reason": form.get("reason", "")[:2000]}, utcnow())
    return _("联单 %(number)s 已作废。", number=manifest.number)


STEPS: dict[str, Callable[[Principal, Manifest, dict[str, str]], str]] = {
    "submit": _submit_step,
    "cancel": _cancel_step,
}


@bp.route("/manifests/<number>/<any(submit, cancel):step>", methods=["POST"])
@login_required
def manifest_step(number: str, step: str):
    principal = require_user()
    try:
        manifest = ledger_services.get_manifest(db.session(), principal, number)
    except NotFound:
        detail = _("联单 %(number)s 不存在，或您无权查看。", number=number)
        return render_template("error.html", status=404, title=_("未找到"), detail=detail), 404
    try:
        message = STEPS[step](principal, manifest, user_fields(request.form))
    except DomainError as exc:
        rollback_request(db.session())  # answered with a redirect (< 400): nothing of it may be stored
        flash(localise_error(exc), "error")
    else:
        flash(message)
    return redirect(url_for("pages.manifest_detail", number=number))


# ---------------------------------------------------------------- what is waiting on whom


#: Rows of one group shown at a time (four groups on one page: the later ones stay in reach on a
#: phone); the rest are reached by the group's own 上一页 / 下一页.
PENDING_PER_PAGE = 10


def waiting_groups(principal: Principal) -> list[dict[str, Any]]:
    """The consignor's open manifests by state, each naming whom it waits on.

    Each group is a keyset page list of its own, its cursor under the state's name in the query
    string (``?in_transit=<cursor>``), so paging one group keeps the others where they were; its
    total is counted up to the cap ("1,000+", :func:`app.common.pagination.count_upto`)."""
    groups = [
        (ManifestStatus.DRAFT, _("草稿：待本单位提交"), "consignor"),
        (ManifestStatus.SUBMITTED, _("已提交：待承运人提货"), "carrier"),
        (ManifestStatus.IN_TRANSIT, _("运输中：待接受人接收"), "receiver"),
        (ManifestStatus.RECEIVED, _("已接收：待接受人利用/处置"), "receiver"),
    ]
    now = utcnow()
    out = []
    for status, title, waiting_on in groups:
        query = ledger_services.list_manifests(db.session(), principal, status=status, party="consignor", now=now)
        page = paging.keyset_page(query.options(selectinload(Manifest.lines)), PENDING_PER_PAGE, name=str(status))
        out.append(
            {
                "status": str(status),
                "title": title,
                "waiting_on": waiting_on,
                "rows": page.items,
                "page": page,
                "total": count_upto(db.session(), query),
            }
        )
    return out


@bp.route("/manifests/todo")
@login_required
def todo():
    principal = _consignor()
    if principal is None:
        return _forbidden()
    return render_template("manifest_todo.html", groups=waiting_groups(principal), now=utcnow())
