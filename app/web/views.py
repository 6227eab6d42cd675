"""Pages. Thin: parse the form, call a service, render a template."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlparse

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required, login_user, logout_user
from marshmallow import ValidationError

from app.accounts import services as account_services
from app.boxes import presenters
from app.boxes import services as box_services
from app.boxes.schemas import FillIn
from app.common.auth import current_principal
from app.common.confirmations import ConfirmationRequired
from app.common.errors import DomainError, InvalidInput, Unauthorized
from app.common.pagination import count_upto
from app.common.timeutil import utcnow
from app.common.tx import commit_read_effects
from app.common.wiring import current_wiring
from app.extensions import db
from app.labels.signing import verify_label
from app.translations import localise_error, localise_message
from app.web import (
    enterprise,
    manifest_forms,
    pages,
    paging,
    receiving,
    regeneration_pages,
    regulator,
    revision_pages,
    scan_render,
    session_resume,
)
from app.web.form_tokens import user_fields

if TYPE_CHECKING:
    from app.boxes.lean import LeanRead

bp = Blueprint("web", __name__, template_folder="../templates")

LANGUAGES = ("zh", "en")
BOXES_PER_PAGE = 50
LANG_COOKIE_DAYS = 365


@bp.after_app_request
def _remember_language(response):
    """``?lang=en`` (or ``zh``) on any page is remembered in the ``lang`` cookie."""
    chosen = request.args.get("lang")
    if chosen in LANGUAGES and request.cookies.get("lang") != chosen:
        response.set_cookie(
            "lang", chosen, max_age=LANG_COOKIE_DAYS * 86400, samesite="Lax", httponly=True, secure=request.is_secure
        )
    return response


@bp.app_errorhandler(paging.BadPageCursor)
def _bad_page_cursor(exc):
    return paging.bad_cursor_page(exc)


@bp.app_context_processor
def _page_links():
    return {"page_url": paging.page_url}


@bp.app_context_processor
def _language_links():
    def lang_url(lang: str) -> str:
        """This page in another language, keeping its other query arguments (a label's v and s)."""
        args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"] + [("lang", lang)]
        return request.path + "?" + urlencode(args)

    return {"lang_url": lang_url}


def _error_messages() -> dict[str, str]:
    """The field messages of the schema and the services (English, for the API) in the page's language."""
    return {
        "missing data for required field": _("必填"),
        "required": _("必填"),
        "field may not be null": _("必填"),
        "must be greater than 0": _("必须大于 0"),
        "not a valid number": _("不是有效的数字"),
        "not a valid datetime": _("不是有效的日期时间"),
        "cannot be in the future": _("不能晚于当前时间"),
        "must be after the previous fill": _("必须晚于上一次装填时间"),
        "required for a replacement: weigh the waste carbon removed": _("更换活性炭时必须填写称重的废炭量"),
        "only a replacement removes waste carbon": _("首次装填没有废炭，请留空"),
        "unknown field": _("未知字段"),
    }


def localise_form_errors(errors: dict) -> dict[str, list[str]]:
    """Per-field messages for the form, translated where the message is known."""
    known = _error_messages()
    out: dict[str, list[str]] = {}
    for name, messages in errors.items():
        if isinstance(messages, str):
            messages = [messages]
        out[name] = [known.get(str(m).strip().rstrip(".").lower(), localise_message(str(m))) for m in messages]
    return out


def _safe_next(target: str | None) -> str:
    """A local path only: browsers read ``//host``, ``///host`` and ``/\\host`` (backslash, or
    with tabs and newlines they drop) as another origin."""
    if (
        target
        and target.startswith("/")
        and target[1:2] not in ("/", "\\")
        and "\\" not in target
        and not any(ord(c) < 32 or ord(c) == 127 for c in target)
        and not urlparse(target).netloc
    ):
        return target
    return url_for("pages.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login():
    from app.accounts import throttle

    error = None
    status = 200
    headers: dict[str, str] = {}
    if request.method == "POST":
        username = request.form.get("username", "")
        wait = throttle.check(username)
        if wait is not None:
            error = _("登录失败次数过多，请 %(minutes)s 分钟后再试。", minutes=wait.minutes)
            status, headers = 429, {"Retry-After": str(wait.retry_after)}
        else:
            try:
                user = account_services.authenticate(db.session(), username, request.form.get("password", ""))
            except Unauthorized:
                throttle.failed(username)
                error, status = _("用户名或密码错误"), 401
            else:
                login_user(user, remember=True)
                return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error), status, headers


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out: a new session generation for the user ends this session cookie, the remember
    cookie and every other session of the user on the server (app.common.auth.load_user), not
    only in this browser. Committed by the boundary (a POST answered with a redirect)."""
    from flask_login import current_user

    if current_user.is_authenticated:
        current_user.end_sessions()
    logout_user()
    return redirect(url_for("web.login"))


def fill_field_labels() -> dict[str, str]:
    """Form field names as the replacement form shows them, for its error list."""
    return {
        "mass_kg": _("装填量 (kg)"),
        "iodine_mg_g": _("碘值 (mg/g)"),
        "removed_waste_kg": _("称重的废炭量 (kg)"),
        "supplier_name": _("供应商"),
        "batch_no": _("活性炭批次号"),
        "filled_at": _("更换时间"),
        "carbon_type": _("活性炭类型"),
        "regeneration_batch_id": _("再生批次编号"),
        "_": _("错误"),
    }


def label_state(secret: str, code: str, label_version: int, version: str | None, signature: str | None) -> str:
    """ok | typed (opened without a label) | forged (bad signature) | superseded (old version),
    for the query's ``v`` and ``s`` (either may be missing)."""
    if version is None and signature is None:
        return "typed"
    if not signature or not verify_label(secret, code, _version_number(version), signature):
        return "forged"
    return "superseded" if _version_number(version) != label_version else "ok"


def _version_number(version: str | None) -> int:
    try:
        return int(version or "")
    except ValueError:
        return -1


def _label_state(code: str, label_version: int) -> tuple[str, str | None, dict]:
    """The label's state (:func:`label_state`), with the scan problem it is recorded as."""
    version, signature = request.args.get("v"), request.args.get("s")
    state = label_state(current_app.config["SECRET_KEY"], code, label_version, version, signature)
    if state == "forged":
        return state, "label_forged_scan", {"v": version, "s": signature, "ua": request.user_agent.string[:200]}
    if state == "superseded":
        return state, "label_superseded_scan", {"v": _version_number(version), "current": label_version}
    return state, None, {}


@bp.route("/c/<code>", methods=["GET", "POST"])
def scan(code):
    """The mobile scan page a label's QR code opens: colour, why, saturation, predicted date,
    the last replacement; for the enterprise's or its carbon service's staff, a replacement form."""
    from flask import session as web_session

    from app.boxes import cache, codes

    now = utcnow()
    # Without a login session or remember cookie the visitor is anonymous: decided here without
    # loading a user, since anonymous scans are the bulk of the traffic.
    signed_in = (
        "_user_id" in web_session or current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies
    )
    principal = current_principal(optional=True) if signed_in else None
    # Anonymous scans are most of the traffic and all see the same page: the lean read (one
    # statement, app.boxes.lean) and the read cache (by the box's revision, app.boxes.cache).
    # HEAD is a GET without its body: the same headers (ETag, Cache-Control) by either path.
    anonymous_get = request.method in ("GET", "HEAD") and principal is None and "_flashes" not in web_session
    normal = codes.normalise(code)
    if anonymous_get and normal:
        answer = _lean_scan(normal, now)
        if answer is not None:
            return answer
    box = box_services.find_box_public(db.session(), code)
    if box is None:
        return render_template("scan_unknown.html", code=code), 404
    label_state, problem, detail = _label_state(box.code, box.label_version)
    if problem:
        box_services.record_scan_problem(db.session(), box.id, problem, detail, now)
    can_fill = bool(principal and not principal.is_device and box_services.can_service(principal, box))
    form_errors: dict = {}
    needs_confirmation = False
    if request.method == "POST":
        if not can_fill:
            commit_read_effects(db.session())  # the scan problem found above, if any
            return render_template(
                "error.html",
                status=403,
                title=_("无权操作"),
                detail=_("只有本企业或其换炭服务单位的人员可以登记换炭。"),
            ), 403
        form = user_fields(request.form)
        try:
            data = FillIn().load(form)
            assert principal is not None  # can_fill: a signed-in person
            box_services.record_fill(db.session(), principal, box, data, now)
        except ValidationError as exc:
            form_errors = localise_form_errors(exc.normalized_messages())
        except InvalidInput as exc:
            form_errors = localise_form_errors(exc.errors)
            needs_confirmation = isinstance(exc, ConfirmationRequired)  # the checkbox appears
        except DomainError as exc:
            form_errors = {"_": [localise_error(exc)]}
        else:
            flash(_("换炭记录已保存"))  # committed by the boundary (app.common.tx): a redirect
            return redirect(url_for("web.scan", code=box.code))
    view = box_services.view_box(db.session(), box, now)
    payload = presenters.box_payload(view)
    last_replacement = box_services.last_replacement(db.session(), box.id)
    status = 422 if form_errors else 200
    html = _render_scan(
        box,
        payload,
        label_state,
        last_replacement,
        now,
        can_fill=can_fill,
        form_errors=form_errors,
        needs_confirmation=needs_confirmation,
        principal=principal,
    )
    if not form_errors:
        commit_read_effects(db.session())  # a refused form (422) is rolled back by the boundary
    if anonymous_get and normal and label_state != "forged":
        cache.scan_page_cache.put(
            db.engine, _scan_cache_key(label_state), normal, box.revision, html, now, view.evaluation.next_check_at
        )
    return _scan_answer(html, status) if anonymous_get else (html, status)


def _render_scan(box, payload, label_state, last_replacement, now, **form) -> str:
    form.setdefault("can_fill", False)
    form.setdefault("form_errors", {})
    form.setdefault("needs_confirmation", False)
    form.setdefault("principal", None)
    return scan_render.render_page(  # the fixed messages compiled in per language
        "scan.html",
        box=box,
        p=payload,
        label_state=label_state,
        form=request.form,
        last_replacement=last_replacement,
        now=now,
        # Only the replacement form (signed-in staff) shows field names.
        field_labels=fill_field_labels() if form["can_fill"] else {},
        **form,
    )


def _scan_cache_key(label_state: str) -> tuple:
    """What besides the box decides an anonymous scan page: the language, the app's rule files
    (two apps in one process), the label's state, and the query (the page links to itself)."""
    from flask_babel import get_locale

    # The request's locale as Flask-Babel chose it (select_locale, kept for the request).
    return (str(get_locale() or "zh"), current_wiring().rules_dir, label_state, request.query_string)


def _lean_scan(code: str, now):
    """An anonymous scan of box ``code`` from its stored evaluation (app.boxes.lean), or None
    for the ordinary path (no such box, or its evaluation must be renewed first)."""
    from app.boxes import cache, lean
    from app.boxes.services.stored import rules_digest

    rules = current_wiring().colour_rules()  # no session is made on this path
    read = lean.read_box(db.engine, code, now, rules, rules_digest(rules), with_last_replacement=True)
    if read is None:
        return None
    box = read.box
    label_state, problem, detail = _label_state(box.code, box.label_version)
    if problem:
        box_services.record_scan_problem(db.session(), box.id, problem, detail, now)
        commit_read_effects(db.session())
    entry = cache.scan_page_cache.get(db.engine, _scan_cache_key(label_state), code, box.revision, now)
    if entry is not None:
        return _scan_answer(entry.value, 200)
    return _scan_answer(lean_scan_page(read, label_state, now), 200)


def lean_scan_page(read: LeanRead, label_state: str, now: datetime) -> str:
    """The anonymous scan page of a lean read (app.boxes.lean.LeanRead), kept in the read cache
    unless its label is forged (that page shows its own query). In a request's context: also
    the fast path's (app.web.fast_reads) when the page is not in the cache."""
    from app.boxes import cache

    box = read.box
    view = box_services.BoxView(box, read.evaluation, read.fill)  # type: ignore[arg-type]
    html = _render_scan(box, presenters.box_payload(view), label_state, read.last_replacement, now)
    if label_state != "forged":
        key = _scan_cache_key(label_state)
        cache.scan_page_cache.put(db.engine, key, box.code, box.revision, html, now, read.evaluation.next_check_at)
    return html


def _scan_answer(html: str, status: int):
    """An anonymous scan page, with an ETag of what it shows (304 for a phone that has it)."""
    response = current_app.make_response((html, status))
    response.headers["Cache-Control"] = "private, no-cache"
    if status == 200:
        response.add_etag()
        if "HTTP_IF_NONE_MATCH" in request.environ:  # only a phone holding a tag can get a 304
            response.make_conditional(request)
    return response


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
    query = box_services.list_boxes(db.session(), principal, colour=colour)
    total = count_upto(db.session(), query)  # "1,000+" past the cap (app.common.pagination)
    page = paging.keyset_page(query, BOXES_PER_PAGE)
    views = box_services.view_boxes(db.session(), page.items)
    commit_read_effects(db.session())
    return render_template(
        "boxes.html", items=[presenters.box_payload(v) for v in views], total=total, page=page, colour=colour
    )


# pages first: its dashboard answers / for signed-in users
BLUEPRINTS = (
    pages.bp,
    bp,
    revision_pages.bp,
    regulator.bp,
    *receiving.BLUEPRINTS,
    *regeneration_pages.BLUEPRINTS,
    session_resume.bp,
    enterprise.bp,
    manifest_forms.bp,
)
