"""Thin API views: parse, call a service, render."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from app.accounts import schemas, services, throttle
from app.accounts.models import County, Park
from app.common.auth import current_principal, require_user
from app.common.errors import Unauthorized, problem
from app.common.schemas import PageArgs, page_schema
from app.common.schemas import listing as _listing
from app.extensions import db

blp = Blueprint("accounts", __name__, description="Organisations, parks, users and tokens (单位、园区、用户)")


def too_many_attempts(wait: throttle.Throttled):
    response = problem(
        429,
        "Too Many Requests",
        f"登录失败次数过多，请 {wait.minutes} 分钟后再试 (too many failed sign-ins; retry later)",
    )
    response.headers["Retry-After"] = str(wait.retry_after)
    return response


@blp.route("/auth/token", methods=["POST"])
@blp.arguments(schemas.TokenIn)
@blp.response(201, schemas.TokenOut)
@blp.alt_response(429, description="Too many failed sign-ins for this account or address (Retry-After)")
@blp.doc(security=[])
def token(body):
    """Exchange a username and password for a bearer token. Failed attempts are throttled per
    account and per address (429 with Retry-After)."""
    wait = throttle.check(body["username"])
    if wait is not None:
        return too_many_attempts(wait)
    try:
        user = services.authenticate(db.session(), body["username"], body["password"])
    except Unauthorized:
        throttle.failed(body["username"])
        raise
    raw, row = services.issue_user_token(db.session(), user, current_app.config["TOKEN_TTL_HOURS"])
    return {"token": raw, "token_type": "Bearer", "expires_at": row.expires_at}


@blp.route("/auth/password", methods=["POST"])
@blp.arguments(schemas.PasswordChangeIn)
@blp.response(204)
def change_password(body):
    """Change one's own password (the current one first). Every session and token signed in before ends."""
    actor = require_user()
    services.change_password(db.session(), actor, body["current_password"], body["new_password"])
    assert actor.user is not None  # require_user(): a person, whose principal always has its user
    services.revoke_user_tokens(db.session(), actor.user)


@blp.route("/auth/revoke", methods=["POST"])
@blp.response(204)
def revoke():
    """Revoke the bearer token of this request (sign out). It stops working at once."""
    from flask import request

    current_principal()
    token = request.headers.get("Authorization", "").partition(" ")[2].strip()
    services.revoke_token(db.session(), token)


@blp.route("/device-tokens")
class DeviceTokens(MethodView):
    @blp.arguments(schemas.DeviceTokenQuery, location="query")
    @blp.response(200, page_schema(schemas.DeviceTokenRow))
    def get(self, args):
        """The device tokens of the caller's organisation (its admins), or of all (operators). Never the tokens themselves."""
        return _listing(services.list_device_tokens(db.session(), require_user(), args.get("organization_id")), args)

    @blp.arguments(schemas.DeviceTokenIn)
    @blp.response(201, schemas.DeviceTokenOut)
    def post(self, body):
        """A gateway token, limited to the organisation's boxes and to ingest, valid
        ``expires_in_days`` (365 by default). The token is shown in this answer only."""
        raw, row = services.issue_device_token(
            db.session(), require_user(), body["organization_id"], body["name"], days=body.get("expires_in_days")
        )
        shown = {name: getattr(row, name) for name in schemas.DeviceTokenRow().fields}
        return {**shown, "token": raw}


@blp.route("/device-tokens/<int:token_id>", methods=["DELETE"])
@blp.response(204)
def revoke_device_token(token_id):
    """Revoke a device token (its organisation's admins, operators): it stops working at once."""
    services.revoke_device_token(db.session(), require_user(), token_id)


@blp.route("/organizations")
class Organizations(MethodView):
    @blp.arguments(schemas.OrganizationQuery, location="query")
    @blp.response(200, page_schema(schemas.OrganizationOut))
    def get(self, args):
        """The organisation directory (filter by role, county, park)."""
        actor = require_user()
        query = services.list_organizations(db.session(), actor, args.get("role"), args.get("county"), args.get("park"))
        return _listing(query, args)

    @blp.arguments(schemas.OrganizationIn)
    @blp.response(201, schemas.OrganizationOut)
    def post(self, body):
        """Register an organisation (operators)."""
        org = services.create_organization(db.session(), require_user(), body)
        return org


@blp.route("/organizations/<int:org_id>")
@blp.response(200, schemas.OrganizationOut)
def organization(org_id):
    return services.get_organization(db.session(), require_user(), org_id)


@blp.route("/parks")
class Parks(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(schemas.ParkOut))
    def get(self, args):
        require_user()
        return _listing(select(Park).order_by(Park.id), args)

    @blp.arguments(schemas.ParkIn)
    @blp.response(201, schemas.ParkOut)
    def post(self, body):
        park = services.create_park(db.session(), require_user(), body)
        return park


@blp.route("/counties")
@blp.response(200, schemas.CountyOut(many=True))
def counties():
    """Taizhou's county-level divisions (GB/T 2260)."""
    require_user()
    return list(db.session.scalars(select(County).order_by(County.code)))


@blp.route("/users")
class Users(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(schemas.UserOut))
    def get(self, args):
        return _listing(services.list_users(db.session(), require_user()), args)

    @blp.arguments(schemas.UserIn)
    @blp.response(201, schemas.UserOut)
    def post(self, body):
        user = services.create_user(db.session(), require_user(), body)
        return user


API_BLUEPRINTS = (blp,)
