"""The Taizhou demo: counties, the parks the plan names, enterprises, regulators, a carbon
service, two regeneration plants, a carrier, ~300 boxes with backdated fill histories.

Everything goes through the services (``create_organization``, ``create_park``, ``create_user``,
``register_box``, ``record_fill``, ``set_status``) with explicit ``now=`` values, so every rule
that applies to real data applies to the demo too, and the colour history is the one the rule
engine writes.

The plan (``shared/seed``) gives the places: 台州湾经济技术开发区医化园区 (头门港, 临海; 附件1 二·59),
天台's "以废治废" activated-carbon pilot with its four-colour 碳箱码 (二·63), activated-carbon
regeneration in 天台 and 温岭 (二·36), the 医化园区 of 椒江 (外沙、岩头) and 黄岩 (江口) (二·40),
路桥's metal-recycling base (二·57), 温岭's eastern industrial cluster (二·60), 玉环's 干江滨港工业城
(二·62), 三门's coastal industrial city and rubber industry (二·65, 66), 仙居's medical-device town (二·64).

Deterministic: one ``random.Random(SEED)``; times are relative to ``now``, so the colours seen
"today" are the ones planned: green, yellow (≥80% saturation or due within 7 days), red
(overdue, or a granular fill with iodine below 800 mg/g), grey (no fill, stopped, decommissioned).

Other domains add their part (manifests, readings, regeneration batches) with an *extension*:
a callable ``fn(session, ctx, now)``, normally in a module ``app/<domain>/demo.py``::

    def add_manifests(session, ctx, now):
        for box in ctx.boxes: ...

named, in the order the extensions run, in :func:`app.common.wiring.demo_extensions` (one
explicit list; nothing registers itself by being imported). Extensions run after the boxes are
loaded and before the final colour evaluation at ``now``.

Split by concern: :mod:`app.demo.context` (the context and the extension type),
:mod:`app.demo.content` (the data tables), :mod:`app.demo.boxes` (boxes and their fill
histories); this module loads the organisations and users and runs the whole. The names other
modules import from here (``DemoContext``, ``VIRGIN_SUPPLIER``, ``USERS``, ``PASSWORD``, …) stay importable from here.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import Organization, Park, User
from app.accounts.reference import TAIZHOU_COUNTIES, ensure_counties
from app.accounts.services import create_organization, create_park, create_user, set_password
from app.accounts.uscc import ALPHABET as USCC_ALPHABET
from app.accounts.uscc import make_uscc
from app.boxes import services as box_services
from app.boxes.models import Box, Fill
from app.demo.boxes import BOX_COUNT, load_boxes
from app.demo.content import (
    COUNTY_SHORT,
    ENTERPRISES,
    PARKS,
    SECTORS,
    SHOWCASE_TARGETS,
    TARGET_WEIGHTS,
    USERS,
    VIRGIN_SUPPLIER,
)
from app.demo.context import (
    BoxPlan,
    DemoContext,
    DemoExtension,
    Login,
    checks_deferred,
)

__all__ = [  # defined here, and re-exported from the modules split off (imported from here elsewhere)
    "BOX_COUNT",
    "CITY",
    "COUNTY_SHORT",
    "ENTERPRISES",
    "MARKER_USCC",
    "PARKS",
    "PASSWORD",
    "SECTORS",
    "SEED",
    "SHOWCASE_TARGETS",
    "TARGET_WEIGHTS",
    "USERS",
    "VIRGIN_SUPPLIER",
    "BoxPlan",
    "DemoContext",
    "DemoExtension",
    "Login",
    "demo_state",
    "demo_uscc",
    "load_boxes",
    "load_demo",
    "load_operator",
    "load_organisations",
    "load_parks",
    "load_users",
    "summarise",
]

SEED = 20250630
PASSWORD = "carbon-demo-2024"  # meets the password policy (app.accounts.passwords)
CITY = "331000"  # 台州市 (prefecture level), used in the USCCs of city-level bodies


# ---------------------------------------------------------------- identifiers


def _org_code(rng: random.Random, prefix: str = "MA") -> str:
    """A 9-character organisation code (GB 11714: 8 characters and a check character)."""
    body = prefix + "".join(rng.choice(USCC_ALPHABET) for _ in range(8 - len(prefix)))
    values = [int(ch, 36) for ch in body]
    remainder = 11 - sum(v * w for v, w in zip(values, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    return body + {10: "X", 11: "0"}.get(remainder, str(remainder))


def demo_uscc(rng: random.Random, county: str | None, kind: str = "91") -> str:
    """``kind`` 91 = enterprise (工商), 11 = government body (机构编制, 机关)."""
    return make_uscc(kind + (county or CITY) + _org_code(rng, "MA" if kind == "91" else "00"))


#: The city regulator's USCC marks a database the demo was loaded into.
MARKER_USCC = make_uscc("11" + CITY + "002573468")


def demo_state(session: Session) -> str:
    """``loaded`` (the demo's marker exists), ``not_empty`` (other data) or ``empty``."""
    if session.scalar(select(Organization.id).where(Organization.uscc == MARKER_USCC)):
        return "loaded"
    if session.scalar(select(func.count()).select_from(Organization)) or session.scalar(
        select(func.count()).select_from(Box)
    ):
        return "not_empty"
    return "empty"


# ---------------------------------------------------------------- loaders


def load_operator(session: Session, ctx_now: datetime) -> tuple[User, bool]:
    """The platform operator ``admin`` (reused, password untouched, when create-superuser made it)."""
    user = session.scalar(select(User).where(User.username == "admin"))
    if user is not None:
        user.is_operator = True
        return user, False
    user = User(
        username="admin", display_name="平台运维", is_operator=True, role="admin", password_hash="", created_at=ctx_now
    )
    set_password(session, user, PASSWORD)
    session.add(user)
    session.flush()
    return user, True


def load_parks(session: Session, ctx: DemoContext) -> None:
    for key, name, county, _admin in PARKS:
        ctx.parks[key] = create_park(session, ctx.operator_principal, {"name": name, "county_code": county})


def load_organisations(session: Session, ctx: DemoContext) -> None:
    """Regulators (``regulator:city``, ``regulator:<county>``), park administrations
    (``park_admin:<park key>``), the carbon service (``service``), the regeneration plants
    (``regen_tiantai``, ``regen_wenling``), the carrier (``carrier``) and the enterprises."""
    op, rng = ctx.operator_principal, ctx.rng

    def org(key: str, data: dict[str, Any]) -> Organization:
        data.setdefault("contact_phone", f"0576-{rng.randint(80000000, 89999999)}")
        made = create_organization(session, op, data)
        ctx.orgs[key] = made
        return made

    org(
        "regulator:city",
        {
            "name": "台州市生态环境局",
            "uscc": MARKER_USCC,
            "roles": ["regulator"],
            "county_code": None,
            "address": "台州市市府大道",
        },
    )
    for code, _name, _en in TAIZHOU_COUNTIES:
        org(
            f"regulator:{code}",
            {
                "name": f"台州市生态环境局{COUNTY_SHORT[code]}分局",
                "uscc": demo_uscc(rng, code, "11"),
                "roles": ["regulator"],
                "county_code": code,
            },
        )
    for key, _name, county, admin in PARKS:
        org(
            f"park_admin:{key}",
            {
                "name": admin,
                "uscc": demo_uscc(rng, county, "11"),
                "roles": ["park_admin"],
                "park_id": ctx.parks[key].id,
            },
        )
    org(
        "service",
        {
            "name": "台州绿源活性炭环保服务有限公司",
            "uscc": demo_uscc(rng, "331023"),
            "roles": ["supplier"],
            "county_code": "331023",
            "address": "天台县始丰街道",
        },
    )
    org(
        "regen_tiantai",
        {
            "name": "浙江天台以废治废再生炭科技有限公司",
            "uscc": demo_uscc(rng, "331023"),
            "roles": ["supplier", "regenerator", "receiver"],
            "park_id": ctx.parks["tiantai"].id,
            "address": "天台县经济开发区",
            "licences": [
                {
                    "number": "浙危废经第3310230012号",
                    "kind": "hw_operation",
                    "waste_codes": ["900-039-49", "900-041-49", "900-405-06"],
                    "valid_until": "2029-06-30",
                    "capacity_t_per_year": 20000,
                    "methods": ["R7"],
                }
            ],
        },
    )
    org(
        "regen_wenling",
        {
            "name": "温岭市绿环活性炭再生有限公司",
            "uscc": demo_uscc(rng, "331081"),
            "roles": ["supplier", "regenerator", "receiver"],
            "park_id": ctx.parks["wenling"].id,
            "address": "温岭市东部产业集聚区",
            "licences": [
                {
                    "number": "浙危废经第3310810027号",
                    "kind": "hw_operation",
                    "waste_codes": ["900-039-49"],
                    "valid_until": "2028-12-31",
                    "capacity_t_per_year": 10000,
                    "methods": ["R7"],
                }
            ],
        },
    )
    org(
        "carrier",
        {
            "name": "台州市安达危险货物运输有限公司",
            "uscc": demo_uscc(rng, "331002"),
            "roles": ["carrier"],
            "county_code": "331002",
            "licences": [
                {
                    "number": "浙交运管许可台字331000200318号",
                    "kind": "transport",
                    "waste_codes": [],
                    "valid_until": "2028-03-31",
                    "vehicles": ["浙J·D3271", "浙J·D5806", "浙J·D6619"],
                }
            ],
        },
    )
    for name, county, park_key, sector in ENTERPRISES:
        enterprise = org(
            f"enterprise:{len(ctx.enterprises)}",
            {
                "name": name,
                "uscc": demo_uscc(rng, county),
                "roles": ["generator"],
                "county_code": county,
                "park_id": ctx.parks[park_key].id if park_key else None,
            },
        )
        ctx.enterprises.append(enterprise)
        ctx.sectors[enterprise.id] = sector


def load_users(session: Session, ctx: DemoContext, operator_created: bool) -> None:
    ctx.users["admin"] = ctx.operator
    ctx.logins.append(
        Login(
            "admin",
            "平台运维" if operator_created else "平台运维（密码未改动）",
            "platform operator" if operator_created else "platform operator (password unchanged)",
            "—",
        )
    )
    for username, org_key, role, role_zh, role_en in USERS:
        organization = ctx.orgs[org_key]
        ctx.users[username] = create_user(
            session,
            ctx.operator_principal,
            {
                "username": username,
                "password": PASSWORD,
                "organization_id": organization.id,
                "role": role,
                "display_name": f"{username}（{role_zh}）",
            },
        )
        ctx.logins.append(Login(username, role_zh, role_en, organization.name))


# ---------------------------------------------------------------- the whole


def summarise(session: Session, state: str, logins: list[Login] | None = None) -> dict[str, Any]:
    colours: dict[str, int] = dict(session.execute(select(Box.colour, func.count()).group_by(Box.colour)).all())
    if logins is None:
        logins = []
        for username, _org_key, _role, role_zh, role_en in (
            ("admin", None, "admin", "平台运维", "platform operator"),
            *USERS,
        ):
            user = session.scalar(select(User).where(User.username == username))
            if user is not None:
                logins.append(Login(username, role_zh, role_en, user.organization.name if user.organization else "—"))
    return {
        "status": state,
        "counties": len(TAIZHOU_COUNTIES),
        "parks": session.scalar(select(func.count()).select_from(Park)),
        "organizations": session.scalar(select(func.count()).select_from(Organization)),
        "users": session.scalar(select(func.count()).select_from(User)),
        "boxes": session.scalar(select(func.count()).select_from(Box)),
        "fills": session.scalar(select(func.count()).select_from(Fill)),
        "colours": {c: colours.get(c, 0) for c in ("grey", "green", "yellow", "red")},
        "password": PASSWORD,
        "logins": [login.__dict__ for login in logins],
    }


def load_demo(session: Session, now: datetime | None = None, seed: int = SEED) -> dict[str, Any]:
    """Load the demo into an empty database and commit. Returns a summary whose ``status`` is
    ``loaded`` (done now), ``already_loaded`` or ``not_empty`` (nothing changed in both)."""
    state = demo_state(session)
    if state == "loaded":
        return summarise(session, "already_loaded")
    if state == "not_empty":
        summary = summarise(session, "not_empty")
        summary["logins"] = []
        return summary
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    rng = random.Random(seed)
    ensure_counties(session)
    operator, operator_created = load_operator(session, now - timedelta(days=430))
    ctx = DemoContext(now=now, rng=rng, operator=operator)
    load_parks(session, ctx)
    load_organisations(session, ctx)
    load_users(session, ctx, operator_created)
    from app.common.wiring import demo_extensions  # the list, written out in the composition root

    extensions = demo_extensions()
    with checks_deferred(session, frozenset().union(*(e.deferred_checks for e in extensions))):
        load_boxes(session, ctx)
        for extension in extensions:
            extension.run(session, ctx, now)
    # Today's colours, with the time each began (e.g. the day a box went overdue).
    box_services.refresh_colours(session, ctx.boxes, now)
    session.commit()
    return summarise(session, "loaded", ctx.logins)
