"""Pages. Thin: parse the form, call a service, render a template."""
from __future__ import annotations

from urllib.parse import urlparse

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required, login_user, logout_user
from marshmallow import ValidationError

from app.accounts import services as account_services
from app.accounts.services import Principal
from app.boxes import presenters, services as box_services
from app.boxes.schemas import FillIn
from app.common.auth import current_principal
from app.common.errors import DomainError, InvalidInput, Unauthorized
from app.common.timeutil import utcnow
from app.extensions import db
from app.labels.signing import verify_label

bp = Blueprint("web", __name__, template_folder="../templates")


def _safe_next(target: str | None) -> str:
    if target and not urlparse(target).netloc and target.startswith("/"):
        return target
    return url_for("web.home")


@bp.route("/")
def home():
    principal = current_principal(optional=True)
    if principal is None:
        return redirect(url_for("web.login"))
    return render_template("home.html", principal=principal)


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        try:
            user = account_services.authenticate(db.session, request.form.get("username", ""),
                                                 request.form.get("password", ""))
        except Unauthorized:
            error = _("用户名或密码错误")
        else:
            login_user(user, remember=True)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    return redirect(url_for("web.login"))


@bp.route("/c/<code>", methods=["GET", "POST"])
def scan(code):
    """The mobile scan page a label's QR code opens: colour, why, saturation, predicted date,
    the last replacement; for the enterprise's or its carbon service's staff, a replacement form."""
    now = utcnow()
    box = box_services.find_box_public(db.session, code)
    if box is None:
        return render_template("scan_unknown.html", code=code), 404
    label_state = "ok"
    version, signature = request.args.get("v"), request.args.get("s")
    if version is not None or signature is not None:
        try:
            version_number = int(version or "")
        except ValueError:
            version_number = -1
        if not signature or not verify_label(current_app.config["SECRET_KEY"], box.code, version_number, signature):
            label_state = "forged"
            box_services.record_scan_problem(db.session, box, "label_forged_scan",
                                             {"v": version, "s": signature, "ua": request.user_agent.string[:200]}, now)
        elif version_number != box.label_version:
            label_state = "superseded"
            box_services.record_scan_problem(db.session, box, "label_superseded_scan",
                                             {"v": version_number, "current": box.label_version}, now)
    else:
        label_state = "typed"  # opened by typing the code: no label to check
    principal = current_principal(optional=True)
    can_fill = bool(principal and not principal.is_device and box_services.can_service(principal, box))
    form_errors: dict = {}
    message = None
    if request.method == "POST":
        if not can_fill:
            db.session.commit()
            return render_template("error.html", status=403, title=_("无权操作"),
                                   detail=_("只有本企业或其换炭服务单位的人员可以登记换炭。")), 403
        form = {k: v for k, v in request.form.items() if v.strip() and k != "csrf"}
        try:
            data = FillIn().load(form)
            box_services.record_fill(db.session, principal, box, data, now)
        except ValidationError as exc:
            form_errors = exc.messages
        except InvalidInput as exc:
            form_errors = exc.errors
        except DomainError as exc:
            form_errors = {"_": [exc.detail]}
        else:
            db.session.commit()
            flash(_("换炭记录已保存"))
            return redirect(url_for("web.scan", code=box.code))
    view = box_services.view_box(db.session, box, now)
    db.session.commit()
    payload = presenters.box_payload(view)
    last_replacement = next((f for f in box_services.history(db.session, box)["fills"][::-1]
                             if f.kind == "replacement"), None)
    status = 422 if form_errors else 200
    return render_template("scan.html", box=box, p=payload, label_state=label_state, can_fill=can_fill,
                           form_errors=form_errors, form=request.form, last_replacement=last_replacement,
                           principal=principal, now=now), status


@bp.app_template_filter("localdate")
def localdate_filter(value):
    from app.common.timeutil import to_local_str

    return to_local_str(value, "%Y-%m-%d")


@bp.app_template_filter("localtime")
def localtime_filter(value):
    from app.common.timeutil import to_local_str

    return to_local_str(value)


@bp.route("/c")
def scan_lookup():
    """A code typed by hand (a damaged label): checked with its check character."""
    from app.boxes import codes

    raw = request.args.get("code", "")
    normal = codes.normalise(raw)
    if normal is None:
        return render_template("scan_unknown.html", code=raw), 404
    return redirect(url_for("web.scan", code=normal))


@bp.route("/boxes")
@login_required
def boxes_page():
    principal = current_principal()
    colour = request.args.get("colour") or None
    if colour not in (None, "grey", "green", "yellow", "red"):
        colour = None
    query = box_services.list_boxes(db.session, principal, colour=colour)
    page = max(int(request.args.get("page", "1") or 1), 1) if request.args.get("page", "1").isdigit() else 1
    from app.common.schemas import paginate

    boxes, total = paginate(db.session, query, page, 50)
    views = box_services.view_boxes(db.session, boxes)
    db.session.commit()
    return render_template("boxes.html", items=[presenters.box_payload(v) for v in views], total=total,
                           page=page, colour=colour)


BLUEPRINTS = (bp,)
