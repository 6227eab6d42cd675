"""Factories for tests: build organisations, users, boxes through the services."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from app.accounts.models import Organization, Park, User
from app.accounts.services import Principal, create_organization, create_park, create_user
from app.accounts.uscc import make_uscc
from app.audit.signatures import SignatureProof, authenticate_signer
from app.boxes import services as box_services
from app.extensions import db

PASSWORD = "correct-horse-9"
_seq = itertools.count(1)


def uscc(county: str = "331023") -> str:
    n = next(_seq)
    return make_uscc(f"91{county}MA{n:07d}".replace("I", "1")[:17])


def operator() -> User:
    user = db.session.query(User).filter_by(username="op").one_or_none()
    if user is None:
        from app.accounts.services import set_password

        user = User(username="op", display_name="运维", is_operator=True, role="admin", password_hash="")
        set_password(db.session, user, PASSWORD)
        db.session.add(user)
        db.session.flush()
    return user


def op_principal() -> Principal:
    return Principal(user=operator())


def org(
    name: str, roles: list[str], county: str | None = "331023", park: Park | None = None, **extra: Any
) -> Organization:
    data = {
        "name": name,
        "roles": roles,
        "county_code": county,
        "park_id": park.id if park else None,
        "uscc": uscc(county or "331000"),
        **extra,
    }
    return create_organization(db.session, op_principal(), data)


def user(organization: Organization | None, username: str, role: str = "staff") -> User:
    return create_user(
        db.session,
        op_principal(),
        {
            "username": username,
            "password": PASSWORD,
            "organization_id": organization.id if organization else None,
            "role": role,
        },
    )


BOX_DEFAULTS = dict(
    facility_code="TA001",
    outlet_code="DA001",
    carbon_type="granular",
    design_fill_kg=2000.0,
    design_airflow_m3_h=15000.0,
    design_removed_mg_m3=80.0,
    hours_per_day=16.0,
    emission_limit_mg_m3=60.0,
)


def box(enterprise: Organization, service: Organization | None = None, now=None, **extra: Any):
    data = {**BOX_DEFAULTS, "enterprise_id": enterprise.id, "service_org_id": service.id if service else None, **extra}
    return box_services.register_box(db.session, op_principal(), data, now=now)


@dataclass
class World:
    park: Park
    enterprise: Organization
    other_enterprise: Organization
    service: Organization
    regulator_tiantai: Organization
    regulator_city: Organization
    park_admin: Organization
    users: dict[str, User] = field(default_factory=dict)

    @classmethod
    def build(cls) -> World:
        operator()
        park = create_park(db.session, op_principal(), {"name": "天台县经济开发区", "county_code": "331023"})
        enterprise = org("天台橡胶制品有限公司", ["generator"], park=park)
        other = org("温岭鞋业有限公司", ["generator"], county="331081")
        service = org("台州再生炭科技有限公司", ["supplier", "regenerator", "receiver"], county="331023")
        reg_tt = org("台州市生态环境局天台分局", ["regulator"], county="331023")
        reg_city = org("台州市生态环境局", ["regulator"], county=None)
        park_admin = org("天台县经济开发区管委会", ["park_admin"], park=park)
        w = cls(park, enterprise, other, service, reg_tt, reg_city, park_admin)
        for key, o, role in [
            ("ent", enterprise, "admin"),
            ("ent_staff", enterprise, "staff"),
            ("other", other, "admin"),
            ("svc", service, "staff"),
            ("reg_tt", reg_tt, "staff"),
            ("reg_city", reg_city, "staff"),
            ("park", park_admin, "staff"),
        ]:
            w.users[key] = user(o, key, role)
        w.users["op"] = operator()
        db.session.commit()
        return w


def signed(user: User) -> SignatureProof:
    """A signature by ``user`` with their password (the step services' ``signature=``)."""
    return authenticate_signer(db.session, user, password=PASSWORD)


def consignor_staff(manifest) -> User:
    """A staff member of the manifest's consignor (for its hand-over at pickup)."""
    return (
        db.session.query(User).filter_by(organization_id=manifest.consignor_id, active=True).order_by(User.id).first()
    )


def handed_over(manifest) -> SignatureProof:
    """The consignor's hand-over signature at pickup (``handover=``), by one of its staff."""
    return signed(consignor_staff(manifest))


SIGNED_STEP = re.compile(r"^/api/v1/manifests/(?P<number>[^/]+)/(?P<step>submit|pickup|receive|reject|process)$")


class ApiClient:
    """A test client that logs in users by name and keeps their bearer tokens.

    Manifest steps are signed as a person would (``sign=False`` posts as given): the caller's
    password as ``signature``, and at pickup the consignor's one-time code as ``handover``
    (issued by one of its staff through ``POST /manifests/{number}/handover-code``)."""

    def __init__(self, client):
        self.client = client
        self.tokens: dict[str, str] = {}

    def token(self, username: str) -> str:
        if username not in self.tokens:
            r = self.client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
            assert r.status_code == 201, r.get_json()
            self.tokens[username] = r.get_json()["token"]
        return self.tokens[username]

    def _headers(self, as_: str | None, headers: dict | None) -> dict:
        h = dict(headers or {})
        if as_:
            h["Authorization"] = f"Bearer {self.token(as_)}"
        return h

    def get(self, url: str, as_: str | None = "op", **kw):
        return self.client.get(url, headers=self._headers(as_, kw.pop("headers", None)), **kw)

    def post(self, url: str, json: Any = None, as_: str | None = "op", sign: bool = True, **kw):
        if sign and as_ and isinstance(json, dict):
            json = self.signed_body(url, json)
        return self.client.post(url, json=json, headers=self._headers(as_, kw.pop("headers", None)), **kw)

    def signed_body(self, url: str, body: dict) -> dict:
        step = SIGNED_STEP.match(url.split("?")[0])
        if step is None and not (url == "/api/v1/manifests" and body.get("submit")):
            return body
        body = dict(body)
        body.setdefault("signature", {"password": PASSWORD})
        if step is not None and step["step"] == "pickup" and "handover" not in body:
            code = self.handover_code(step["number"])
            if code is not None:
                body["handover"] = {"one_time_code": code}
        return body

    def handover_code(self, number: str) -> str | None:
        """A one-time hand-over code issued by the consignor's first staff member, or None."""
        from app.ledger.models import Manifest

        manifest = db.session.query(Manifest).filter_by(number=number).one_or_none()
        staff = consignor_staff(manifest) if manifest is not None else None
        if staff is None:
            return None
        r = self.post(f"/api/v1/manifests/{number}/handover-code", {}, as_=staff.username, sign=False)
        return r.get_json()["code"] if r.status_code == 201 else None
