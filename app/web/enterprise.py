"""The enterprise administrator's pages: register boxes and staff accounts, list the staff; and
the label sheet of the boxes chosen on the box list (any signed-in user, for the boxes they see).

Thin: the form is parsed by the API's schemas, the work done by the services
(:func:`app.boxes.services.register_box`, :func:`app.accounts.services.create_user` with the
password policy of ``app/accounts/passwords.py``, :mod:`app.labels.sheets`). A refused form is
shown again with what was typed and each field's message (422; the boundary rolls back).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from marshmallow import ValidationError

from app.accounts import services as account_services
from app.accounts.models import Organization, User
from app.accounts.schemas import UserIn
from app.accounts.services import Principal
from app.boxes import services as box_services
from app.boxes.models import CARBON_TYPES
from app.boxes.schemas import BoxIn
from app.common.auth import require_user
from app.common.errors import DomainError, InvalidInput, NotFound
from app.extensions import db
from app.labels.sheets import boxes_for_sheet, label_sheet
from app.translations import localise_error
from app.web.form_errors import field_messages
from app.web.form_tokens import user_fields

bp = Blueprint("enterprise_pages", __name__, template_folder="../templates")


def _messages(exc: ValidationError) -> dict[str, Any]:
    """marshmallow's messages of a form (a dict of fields; a bare list is the form's own)."""
    return exc.messages if isinstance(exc.messages, dict) else {"_": exc.messages}


def _forbidden(detail: str):
    return render_template("error.html", status=403, title=_("无权访问"), detail=detail), 403


def _enterprise_admin() -> Principal | None:
    """The signed-in administrator of an enterprise (a generator), else None."""
    principal = require_user()
    org = principal.organization
    user = principal.user
    if org is None or user is None or principal.is_device or not org.has_role("generator") or user.role != "admin":
        return None
    return principal


def is_enterprise_admin() -> bool:
    from flask_login import current_user

    if not (current_user and current_user.is_authenticated):
        return False
    org = current_user.organization
    return bool(org is not None and org.has_role("generator") and current_user.role == "admin")


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"is_enterprise_admin": is_enterprise_admin}


# ---------------------------------------------------------------- boxes


def box_field_labels() -> dict[str, str]:
    return {
        "name": _("名称"),
        "facility_code": _("治理设施编号"),
        "outlet_code": _("排放口编号"),
        "carbon_type": _("活性炭类型"),
        "design_fill_kg": _("设计装填量 (kg)"),
        "design_airflow_m3_h": _("设计风量 (m³/h)"),
        "design_removed_mg_m3": _("设计去除浓度 (mg/m³)"),
        "hours_per_day": _("日运行时间 (h)"),
        "emission_limit_mg_m3": _("排放限值 (mg/m³)"),
        "service_org_id": _("换炭服务单位"),
        "has_sensors": _("安装在线监测"),
        "_": _("错误"),
    }


def carbon_type_names() -> dict[str, str]:
    return {"granular": _("颗粒炭"), "honeycomb": _("蜂窝炭"), "fibre": _("活性炭纤维")}


def _services_choices() -> list[tuple[int, str]]:
    query = account_services.list_organizations(db.session(), require_user(), role="supplier")
    return [(o.id, o.name) for o in db.session().scalars(query.order_by(None).order_by(Organization.name))]


def _register_box(principal: Principal, form: dict[str, str]):
    """One box from the form (the enterprise is the admin's own)."""
    raw: dict[str, Any] = dict(form)
    raw["has_sensors"] = "has_sensors" in form
    data = BoxIn().load(raw)
    data["enterprise_id"] = principal.organization.id if principal.organization else None
    return box_services.register_box(db.session(), principal, data)


@bp.route("/enterprise/boxes/new", methods=["GET", "POST"])
@login_required
def new_box():
    principal = _enterprise_admin()
    if principal is None:
        return _forbidden(_("只有企业管理员可以登记碳箱。"))
    errors: dict[str, list[str]] = {}
    form = user_fields(request.form) if request.method == "POST" else {}
    if request.method == "POST":
        try:
            box = _register_box(principal, form)
        except ValidationError as exc:
            errors = field_messages(_messages(exc))
        except InvalidInput as exc:
            errors = field_messages(exc.errors) or {"_": [localise_error(exc)]}
        except DomainError as exc:
            errors = {"_": [localise_error(exc)]}
        else:
            flash(_("碳箱 %(code)s 已登记，可打印标签。", code=box.code))
            return redirect(url_for("web.boxes_page", registered=box.code))
    return render_template(
        "enterprise_box_new.html",
        errors=errors,
        form=form,
        labels=box_field_labels(),
        carbon_types=[(c, carbon_type_names()[c]) for c in CARBON_TYPES],
        services=_services_choices(),
    ), (422 if errors else 200)


# ---------------------------------------------------------------- staff


def staff_field_labels() -> dict[str, str]:
    return {
        "username": _("用户名"),
        "display_name": _("姓名"),
        "password": _("初始密码"),
        "role": _("角色"),
        "_": _("错误"),
    }


def _create_staff(principal: Principal, form: dict[str, str]) -> User:
    data = UserIn().load({k: v for k, v in form.items() if k in ("username", "display_name", "password", "role")})
    data["organization_id"] = principal.organization.id if principal.organization else None
    data["is_operator"] = False
    return account_services.create_user(db.session(), principal, data)


@bp.route("/enterprise/staff", methods=["GET", "POST"])
@login_required
def staff():
    principal = _enterprise_admin()
    if principal is None:
        return _forbidden(_("只有企业管理员可以管理人员账号。"))
    errors: dict[str, list[str]] = {}
    form = user_fields(request.form) if request.method == "POST" else {}
    if request.method == "POST":
        try:
            user = _create_staff(principal, form)
        except ValidationError as exc:
            errors = field_messages(_messages(exc))
        except InvalidInput as exc:
            errors = field_messages(exc.errors) or {"_": [localise_error(exc)]}
        except DomainError as exc:
            errors = field_messages(getattr(exc, "errors", None) or {}) or {"_": [localise_error(exc)]}
        else:
            flash(_("账号 %(username)s 已创建。", username=user.username))
            return redirect(url_for("enterprise_pages.staff"))
    users = list(db.session().scalars(account_services.list_users(db.session(), principal)))
    return render_template(
        "enterprise_staff.html",
        users=users,
        errors=errors,
        form=form,
        labels=staff_field_labels(),
        roles=[("staff", _("普通人员")), ("admin", _("管理员"))],
    ), (422 if errors else 200)


# ---------------------------------------------------------------- label sheets


@bp.route("/boxes/labels.pdf")
@login_required
def labels_pdf():
    """The label sheet of the boxes ticked on the box list (``codes``, repeated)."""
    principal = require_user()
    try:
        boxes = boxes_for_sheet(db.session(), principal, codes=request.args.getlist("codes"))
    except NotFound as exc:
        return render_template("error.html", status=404, title=_("未找到"), detail=localise_error(exc)), 404
    except InvalidInput:
        return render_template(
            "error.html", status=422, title=_("没有选择碳箱"), detail=_("请在碳箱列表中勾选要打印标签的碳箱。")
        ), 422
    cfg = current_app.config
    pdf = label_sheet(boxes, cfg["PUBLIC_BASE_URL"], cfg["SECRET_KEY"])
    return Response(pdf, mimetype="application/pdf", headers={"Content-Disposition": 'inline; filename="labels.pdf"'})
