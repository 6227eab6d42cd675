"""Thin API views: parse, call a service, render."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from app.accounts import schemas, services
from app.accounts.models import County, Park
from app.common.auth import current_principal, require_user
from app.common.schemas import PageArgs, listing as _listing, page_schema
from app.extensions import db

blp = Blueprint("accounts", __name__, description="Organisations, parks, users and tokens (单位、园区、用户)")


@blp.route("/auth/token", methods=["POST"])
@blp.arguments(schemas.TokenIn)
@blp.response(201, schemas.TokenOut)
@blp.doc(security=[])
def token(body):
    """Exchange a username and password for a bearer token."""
    user = services.authenticate(db.session, body["username"], body["password"])
    raw, row = services.issue_user_token(db.session, user, current_app.config["TOKEN_TTL_HOURS"])
    return {"token": raw, "token_type": "Bearer", "expires_at": row.expires_at}


@blp.route("/auth/revoke", methods=["POST"])
@blp.response(204)
def revoke():
    """Revoke the bearer token of this request (sign out). It stops working at once."""
    from flask import request

    current_principal()
    token = request.headers.get("Authorization", "").partition(" ")[2].strip()
    services.revoke_token(db.session, token)


@blp.route("/device-tokens", methods=["POST"])
@blp.arguments(schemas.DeviceTokenIn)
@blp.response(201, schemas.DeviceTokenOut)
def device_token(body):
    """A long-lived gateway token, limited to the organisation's boxes and to ingest. Shown once."""
    raw, row = services.issue_device_token(db.session, require_user(), body["organization_id"], body["name"])
    return {"id": row.id, "token": raw, "name": row.name, "organization_id": row.organization_id}


@blp.route("/organizations")
class Organizations(MethodView):
    @blp.arguments(schemas.OrganizationQuery, location="query")
    @blp.response(200, page_schema(schemas.OrganizationOut))
    def get(self, args):
        """The organisation directory (filter by role, county, park)."""
        actor = require_user()
        query = services.list_organizations(db.session, actor, args.get("role"), args.get("county"), args.get("park"))
        return _listing(query, args)

    @blp.arguments(schemas.OrganizationIn)
    @blp.response(201, schemas.OrganizationOut)
    def post(self, body):
        """Register an organisation (operators)."""
        org = services.create_organization(db.session, require_user(), body)
        return org


@blp.route("/organizations/<int:org_id>")
@blp.response(200, schemas.OrganizationOut)
def organization(org_id):
    return services.get_organization(db.session, require_user(), org_id)


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
        park = services.create_park(db.session, require_user(), body)
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
        return _listing(services.list_users(db.session, require_user()), args)

    @blp.arguments(schemas.UserIn)
    @blp.response(201, schemas.UserOut)
    def post(self, body):
        user = services.create_user(db.session, require_user(), body)
        return user


API_BLUEPRINTS = (blp,)
