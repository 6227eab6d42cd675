"""The manifest's verification page (``/m/{number}``, the QR code on the paper) and the carrier's
pickup from it: what is being taken before the confirmation, errors beside the fields with what
was typed, a confirmation page after success.
"""

from __future__ import annotations

import re

from flask import Blueprint as PageBlueprint
from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.accounts.services import Principal
from app.audit.signatures import checks as signature_checks
from app.audit.signing_forms import handover_from_form, signature_from_form
from app.common.auth import current_principal
from app.common.errors import DomainError, InvalidInput
from app.common.forms import user_fields
from app.common.timeutil import to_local_str, utcnow
from app.extensions import db
from app.ledger import schemas, services
from app.ledger.models import STATE_ZH
from app.ledger.pdf import ACTION_ZH
from app.translations import field_names, localise_error, localise_message

pages = PageBlueprint("manifest_pages", __name__, template_folder="../templates")


def _page_principal() -> Principal | None:
    """Who is signed in on this page (session cookie); forms here are CSRF-protected."""
    if current_user and current_user.is_authenticated:
        return Principal(user=current_user._get_current_object())
    return current_principal(optional=True) if request.method == "GET" else None


def _verify_page(manifest, number: str, principal: Principal | None, errors=None, form=None, status: int = 200):
    """The verification page; for the carrier of a submitted manifest, what is being taken (lines,
    quantities, packaging, the consignor) and the pickup form, with its errors and what was typed."""
    can_read = False
    parties: set[str] = set()
    if principal is not None:
        parties = services.party_of(principal, manifest)
        can_read = services.can_read(db.session(), principal, manifest)
    steps = [
        {"label": _(ACTION_ZH.get(e.action, e.action)), "at": to_local_str(e.at), "party": e.party}
        for e in manifest.events
    ]
    can_pickup = "carrier" in parties and manifest.status == "submitted"
    return render_template(
        "manifest_verify.html",
        manifest=manifest,
        number=number,
        state_zh=_(STATE_ZH[manifest.status]),
        steps=steps,
        signature_rows=_signature_rows(manifest, can_read),
        can_read=can_read,
        can_pickup=can_pickup,
        show_lines=can_pickup or can_read,
        overdue=manifest.is_overdue(utcnow()),
        errors=errors or {},
        form=form or {},
        field_labels={**field_names(), "_": _("错误")},
    ), status


def _signature_rows(manifest, can_read: bool) -> list[dict]:
    """Each signature with the hash recomputed now; the signer's name only for those who may read the manifest."""
    from app.audit.pages import method_names, step_names

    parties = {"consignor": _("移出人"), "carrier": _("承运人"), "receiver": _("接受人")}
    return [
        {
            "step": c.signature.step,
            "step_label": step_names().get(c.signature.step, c.signature.step),
            "party_label": parties.get(c.signature.party, c.signature.party),
            "signer": f"{c.signature.signer_name}（{c.signature.organization_name}）" if can_read else "",
            "method_label": method_names().get(c.signature.method, c.signature.method),
            "at": to_local_str(c.signature.signed_at),
            "matches": c.matches,
            "superseded": c.superseded and not c.matches,
            "version": c.signature.manifest_version,
            "sha256": c.signature.content_sha256,
        }
        for c in signature_checks(db.session(), manifest)
    ]


@pages.route("/m/<number>", methods=["GET"])
def verify(number):
    """Anyone holding the paper can check it: the state and the steps with their dates, nothing
    more (no quantities, no names: numbers are sequential and could be guessed). Parties and
    regulators who are signed in see the lines and get a link to the full record; the carrier
    gets the pickup form."""
    manifest = services.find_manifest_public(db.session(), number)
    if manifest is None:
        return render_template("manifest_verify.html", manifest=None, number=number), 404
    return _verify_page(manifest, number, _page_principal())


#: Mainland mobile numbers (11 digits from 13…19) and landlines with their area code (0571-8888888,
#: 057688888888, an extension after a dash).
PHONE_RE = re.compile(r"^(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(?:-\d{1,6})?)$")


def _pickup_form(form: dict[str, str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """What the carrier typed, normalised, and the page's own checks (plate and phone formats)."""
    data = {
        "vehicle_plate": re.sub(r"[\s·.-]+", "", form.get("vehicle_plate", "")).upper(),
        "driver_name": form.get("driver_name", "").strip(),
        "driver_phone": re.sub(r"[\s()]+", "", form.get("driver_phone", "")),
    }
    errors: dict[str, list[str]] = {}
    if not data["vehicle_plate"]:
        errors["vehicle_plate"] = [_("必填")]
    elif schemas.PLATE_RE.match(data["vehicle_plate"]) is None:
        errors["vehicle_plate"] = [_("车牌号格式不正确，例如 %(a)s 或 %(b)s", a="浙J12345", b="浙JD12345")]
    if not data["driver_name"]:
        errors["driver_name"] = [_("必填")]
    elif len(data["driver_name"]) > 60:
        errors["driver_name"] = [_("不能超过 %(max)s 个字符", max=60)]
    if not data["driver_phone"]:
        errors["driver_phone"] = [_("必填")]
    elif PHONE_RE.match(data["driver_phone"]) is None:
        errors["driver_phone"] = [_("请填写手机号（11 位）或带区号的固定电话，例如 13812345678 或 0576-88123456")]
    return data, errors


def _pickup_step(principal: Principal, manifest, data: dict[str, str]) -> None:
    """The carrier's step, signed by the carrier's password and the consignor's hand-over code."""
    signature = signature_from_form(db.session(), principal.user, request.form, manifest)
    handover = handover_from_form(db.session(), principal.user, request.form, manifest)
    services.pickup(db.session(), principal, manifest, data, utcnow(), signature=signature, handover=handover)


@pages.route("/m/<number>/pickup", methods=["POST"])
def verify_pickup(number):
    """The carrier scanned the manifest's QR code and confirms the pickup from the page. A refused
    pickup is shown again (422, rolled back by the boundary) with the errors and what was typed."""
    principal = _page_principal()
    if principal is None:
        return redirect(url_for("web.login", next=url_for("manifest_pages.verify", number=number)))
    manifest = services.find_manifest_public(db.session(), number)
    if manifest is None:
        abort(404)
    if "carrier" not in services.party_of(principal, manifest):
        # Not this manifest's carrier: the page it comes from shows no pickup form to them.
        return redirect(url_for("manifest_pages.verify", number=number))
    form = user_fields(request.form)
    data, errors = _pickup_form(form)
    if not errors:
        try:
            _pickup_step(principal, manifest, data)
        except InvalidInput as exc:
            errors = {
                name: [localise_message(str(m)) for m in (msgs if isinstance(msgs, list) else [msgs])]
                for name, msgs in (exc.errors or {}).items()
            } or {"_": [localise_error(exc)]}
        except DomainError as exc:
            errors = {"_": [localise_error(exc)]}
        else:
            return redirect(url_for("manifest_pages.picked_up", number=number))
    return _verify_page(manifest, number, principal, errors=errors, form=form, status=422)


@pages.route("/m/<number>/picked-up", methods=["GET"])
def picked_up(number):
    """The carrier's confirmation after the pickup: what was taken, by which vehicle, and by when
    the receiver must sign for it."""
    principal = _page_principal()
    manifest = services.find_manifest_public(db.session(), number)
    if manifest is None:
        return render_template("manifest_verify.html", manifest=None, number=number), 404
    if principal is None or "carrier" not in services.party_of(principal, manifest) or manifest.picked_up_at is None:
        return redirect(url_for("manifest_pages.verify", number=number))
    return render_template("manifest_picked_up.html", manifest=manifest, state_zh=_(STATE_ZH[manifest.status]))
