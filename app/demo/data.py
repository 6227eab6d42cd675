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
a callable ``fn(session, ctx, now)`` appended to :data:`DEMO_EXTENSIONS`, normally from a module
``app/<domain>/demo.py`` that :func:`load_demo` imports (see :func:`import_demo_extensions`)::

    from app.demo.data import demo_extension

    @demo_extension
    def add_manifests(session, ctx, now):
        for box in ctx.boxes: ...

Extensions run after the boxes are loaded and before the final colour evaluation at ``now``.
"""
from __future__ import annotations

import importlib
import random
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import Organization, Park, User
from app.accounts.reference import TAIZHOU_COUNTIES, ensure_counties
from app.accounts.services import Principal, create_organization, create_park, create_user, set_password
from app.accounts.uscc import ALPHABET as USCC_ALPHABET
from app.accounts.uscc import make_uscc
from app.boxes import codes
from app.boxes import services as box_services
from app.boxes.models import Box, Fill

SEED = 20250630
PASSWORD = "carbon-demo-2024"  # meets the password policy (app.accounts.passwords)
BOX_COUNT = 300
CITY = "331000"  # 台州市 (prefecture level), used in the USCCs of city-level bodies

DemoExtension = Callable[[Session, "DemoContext", datetime], None]
#: ``fn(session, ctx, now)`` run in order at the end of :func:`load_demo`.
DEMO_EXTENSIONS: list[DemoExtension] = []


#: Rule codes whose facts only the extensions supply (manifests that ship the waste carbon, the
#: recent sensor readings). Those facts are incomplete until every extension has run, so the
#: replay and the extensions leave these checks out of the colour history they write; the final
#: evaluation at ``now`` applies every rule. An extension module adds its codes when imported.
REPLAY_DEFERRED_CHECKS: set[str] = set()


@contextmanager
def _checks_deferred(codes: set[str]):
    from app.boxes.colour import CHECKS, import_rule_plugins

    import_rule_plugins()
    saved = {code: CHECKS[code] for code in codes if code in CHECKS}
    CHECKS.update({code: (lambda facts, params: None) for code in saved})
    try:
        yield
    finally:
        CHECKS.update(saved)


def demo_extension(fn: DemoExtension) -> DemoExtension:
    """Register ``fn`` as a demo extension (once, however often its module is imported)."""
    if fn not in DEMO_EXTENSIONS:
        DEMO_EXTENSIONS.append(fn)
    return fn


def import_demo_extensions() -> None:
    """Import ``app.<domain>.demo`` for every domain that has one, so its extensions register."""
    from app import DOMAINS

    for domain in DOMAINS:
        name = f"app.{domain}.demo"
        if domain == "demo":
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise


# ---------------------------------------------------------------- the content

# key, name, county, park administration (names as in the plan where it names one)
PARKS = (
    ("toumen", "台州湾经济技术开发区医化园区", "331082", "台州湾经济技术开发区管委会"),
    ("tiantai", "天台县经济开发区", "331023", "天台县经济开发区管委会"),
    ("wenling", "温岭市东部产业集聚区", "331081", "温岭市东部产业集聚区管委会"),
    ("yantou", "椒江外沙岩头医化园区", "331002", "椒江区外沙岩头医化园区管理办公室"),
    ("jiangkou", "黄岩江口医化园区", "331003", "黄岩江口医化园区管理委员会"),
    ("luqiao", "路桥金属资源再生产业基地", "331004", "浙江路桥经济开发区管委会"),
    ("ganjiang", "玉环干江滨港工业城", "331083", "玉环市干江镇人民政府"),
    ("sanmen", "三门县沿海工业城", "331022", "三门县沿海工业城发展服务中心"),
    ("xianju", "仙居县医疗器械小镇", "331024", "仙居县经济开发区管委会"),
)

# Enterprises (产废单位): name, county, park key or None, sector. Fictional names.
ENTERPRISES = (
    ("天台县恒力橡胶制品有限公司", "331023", "tiantai", "橡胶"),
    ("浙江天台三和橡塑有限公司", "331023", "tiantai", "橡胶"),
    ("天台县赤城汽车用品有限公司", "331023", "tiantai", "汽摩配"),
    ("天台县始丰滤材科技有限公司", "331023", "tiantai", "化纤滤料"),
    ("台州天盛车饰有限公司", "331023", "tiantai", "涂装"),
    ("天台县国清胶带有限公司", "331023", None, "橡胶"),
    ("浙江华顶医药化工有限公司", "331023", "tiantai", "医化"),
    ("天台县平桥印务有限公司", "331023", None, "印刷"),
    ("浙江头门港制药有限公司", "331082", "toumen", "医化"),
    ("临海市东海精细化工有限公司", "331082", "toumen", "医化"),
    ("浙江临港药业有限公司", "331082", "toumen", "医化"),
    ("台州湾润和化学有限公司", "331082", "toumen", "医化"),
    ("临海市杜桥光学眼镜有限公司", "331082", None, "涂装"),
    ("临海市括苍家具有限公司", "331082", None, "家具"),
    ("台州市岩头化工有限公司", "331002", "yantou", "医化"),
    ("浙江外沙药业有限公司", "331002", "yantou", "医化"),
    ("台州市椒江海门包装印刷有限公司", "331002", None, "印刷"),
    ("台州市椒江精缝机械有限公司", "331002", None, "涂装"),
    ("台州市黄岩江口化工有限公司", "331003", "jiangkou", "医化"),
    ("浙江黄岩永丰制药有限公司", "331003", "jiangkou", "医化"),
    ("台州市黄岩精艺模塑有限公司", "331003", None, "涂装"),
    ("台州市黄岩西城家具有限公司", "331003", None, "家具"),
    ("台州市路桥金泰再生金属有限公司", "331004", "luqiao", "涂装"),
    ("台州市路桥峰江汽配有限公司", "331004", "luqiao", "汽摩配"),
    ("台州市路桥横街五金制品有限公司", "331004", None, "涂装"),
    ("温岭市东海塑胶鞋业有限公司", "331081", "wenling", "鞋业"),
    ("温岭市泽国鞋业有限公司", "331081", None, "鞋业"),
    ("浙江温岭松门船舶修造有限公司", "331081", "wenling", "涂装"),
    ("温岭市大溪水泵有限公司", "331081", None, "涂装"),
    ("温岭市箬横汽车配件有限公司", "331081", "wenling", "汽摩配"),
    ("玉环市干江阀门有限公司", "331083", "ganjiang", "涂装"),
    ("玉环市楚门汽摩配件有限公司", "331083", "ganjiang", "汽摩配"),
    ("玉环市坎门家具有限公司", "331083", None, "家具"),
    ("三门县海游橡胶有限公司", "331022", "sanmen", "橡胶"),
    ("浙江三门沿海橡塑科技有限公司", "331022", "sanmen", "橡胶"),
    ("仙居县永安制药有限公司", "331024", "xianju", "医化"),
    ("仙居县白塔工艺品有限公司", "331024", None, "涂装"),
    ("浙江仙居康源医疗器械有限公司", "331024", "xianju", "医化"),
)

# Per sector: box weight (医化 plants have many boxes), workshops, emission limit (mg/m³ NMHC),
# hours per day options.
SECTORS: dict[str, dict[str, Any]] = {
    "医化": {"weight": 3.0, "workshops": ("合成车间", "精烘包车间", "溶剂回收车间", "危废仓库", "污水站"),
             "limit": 60.0, "hours": (24, 24, 20, 16)},
    "橡胶": {"weight": 1.5, "workshops": ("炼胶车间", "硫化车间", "压延车间"), "limit": 10.0, "hours": (16, 20, 24)},
    "汽摩配": {"weight": 1.3, "workshops": ("喷涂线", "电泳线", "注塑车间"), "limit": 60.0, "hours": (8, 10, 12, 16)},
    "涂装": {"weight": 1.2, "workshops": ("喷漆房", "烘干房", "调漆间"), "limit": 60.0, "hours": (8, 10, 12, 16)},
    "印刷": {"weight": 1.0, "workshops": ("印刷车间", "复合车间", "调墨间"), "limit": 50.0, "hours": (10, 12, 16)},
    "鞋业": {"weight": 1.0, "workshops": ("刷胶线", "成型车间", "喷光线"), "limit": 40.0, "hours": (8, 10, 12)},
    "家具": {"weight": 0.8, "workshops": ("喷漆房", "打磨房", "干燥房"), "limit": 60.0, "hours": (8, 10)},
    "化纤滤料": {"weight": 0.8, "workshops": ("定型车间", "浸渍车间"), "limit": 60.0, "hours": (16, 24)},
}

COUNTY_SHORT = {code: name[:-1] for code, name, _ in TAIZHOU_COUNTIES}  # 天台县 → 天台

VIRGIN_SUPPLIER = "山西晋阳活性炭有限公司"  # fictional; new (non-regenerated) coal-based carbon

# Planned state "today" for each box; the fill history is built backwards from it. "…_first": a
# newly commissioned box, its first carbon still in.
TARGET_WEIGHTS = (
    ("green", 0.30), ("green_first", 0.12), ("yellow", 0.15), ("yellow_first", 0.05), ("red_overdue", 0.15),
    ("red_iodine", 0.05),
    ("grey_new", 0.05), ("grey_stopped", 0.07), ("grey_decommissioned", 0.06),
)
# The enterprise whose staff log in (`qiye`): one box in each state.
SHOWCASE_TARGETS = ("green", "yellow", "red_overdue", "red_iodine", "grey_new", "green_first", "grey_stopped",
                    "yellow_first")


@dataclass
class Login:
    username: str
    role_zh: str
    role_en: str
    organization: str


@dataclass
class BoxPlan:
    target: str
    cycle_days: float
    fill_times: list[datetime]
    status_change: tuple[str, datetime] | None = None
    actor: str = "huanta"


@dataclass
class DemoContext:
    """What the loader built; handed to the extensions."""

    now: datetime
    rng: random.Random
    operator: User
    parks: dict[str, Park] = field(default_factory=dict)
    orgs: dict[str, Organization] = field(default_factory=dict)  # see load_organisations for the keys
    enterprises: list[Organization] = field(default_factory=list)
    sectors: dict[int, str] = field(default_factory=dict)  # enterprise id → sector
    users: dict[str, User] = field(default_factory=dict)
    logins: list[Login] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    plans: dict[int, BoxPlan] = field(default_factory=dict)  # box id → plan
    fills: int = 0

    def principal(self, username: str) -> Principal:
        return Principal(user=self.users[username])

    @property
    def operator_principal(self) -> Principal:
        return Principal(user=self.operator)


# ---------------------------------------------------------------- identifiers

def _org_code(rng: random.Random, prefix: str = "MA") -> str:
    """A 9-character organisation code (GB 11714: 8 characters and a check character)."""
    body = prefix + "".join(rng.choice(USCC_ALPHABET) for _ in range(8 - len(prefix)))
    values = [int(ch, 36) for ch in body]
    remainder = 11 - sum(v * w for v, w in zip(values, (3, 7, 9, 10, 5, 8, 4, 2))) % 11
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
    if session.scalar(select(func.count()).select_from(Organization)) or \
            session.scalar(select(func.count()).select_from(Box)):
        return "not_empty"
    return "empty"


# ---------------------------------------------------------------- loaders

def load_operator(session: Session, ctx_now: datetime) -> tuple[User, bool]:
    """The platform operator ``admin`` (reused, password untouched, when create-superuser made it)."""
    user = session.scalar(select(User).where(User.username == "admin"))
    if user is not None:
        user.is_operator = True
        return user, False
    user = User(username="admin", display_name="平台运维", is_operator=True, role="admin", password_hash="",
                created_at=ctx_now)
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

    org("regulator:city", {"name": "台州市生态环境局", "uscc": MARKER_USCC, "roles": ["regulator"],
                           "county_code": None, "address": "台州市市府大道"})
    for code, name, _en in TAIZHOU_COUNTIES:
        org(f"regulator:{code}", {"name": f"台州市生态环境局{COUNTY_SHORT[code]}分局",
                                  "uscc": demo_uscc(rng, code, "11"), "roles": ["regulator"], "county_code": code})
    for key, _name, county, admin in PARKS:
        org(f"park_admin:{key}", {"name": admin, "uscc": demo_uscc(rng, county, "11"), "roles": ["park_admin"],
                                  "park_id": ctx.parks[key].id})
    org("service", {
        "name": "台州绿源活性炭环保服务有限公司", "uscc": demo_uscc(rng, "331023"), "roles": ["supplier"],
        "county_code": "331023", "address": "天台县始丰街道",
    })
    org("regen_tiantai", {
        "name": "浙江天台以废治废再生炭科技有限公司", "uscc": demo_uscc(rng, "331023"),
        "roles": ["supplier", "regenerator", "receiver"], "park_id": ctx.parks["tiantai"].id,
        "address": "天台县经济开发区", "licences": [{
            "number": "浙危废经第3310230012号", "kind": "hw_operation",
            "waste_codes": ["900-039-49", "900-041-49", "900-405-06"], "valid_until": "2029-06-30",
            "capacity_t_per_year": 20000, "methods": ["R7"],
        }],
    })
    org("regen_wenling", {
        "name": "温岭市绿环活性炭再生有限公司", "uscc": demo_uscc(rng, "331081"),
        "roles": ["supplier", "regenerator", "receiver"], "park_id": ctx.parks["wenling"].id,
        "address": "温岭市东部产业集聚区", "licences": [{
            "number": "浙危废经第3310810027号", "kind": "hw_operation", "waste_codes": ["900-039-49"],
            "valid_until": "2028-12-31", "capacity_t_per_year": 10000, "methods": ["R7"],
        }],
    })
    org("carrier", {
        "name": "台州市安达危险货物运输有限公司", "uscc": demo_uscc(rng, "331002"), "roles": ["carrier"],
        "county_code": "331002", "licences": [{
            "number": "浙交运管许可台字331000200318号", "kind": "transport", "waste_codes": [],
            "valid_until": "2028-03-31", "vehicles": ["浙J·D3271", "浙J·D5806", "浙J·D6619"],
        }],
    })
    for name, county, park_key, sector in ENTERPRISES:
        enterprise = org(f"enterprise:{len(ctx.enterprises)}", {
            "name": name, "uscc": demo_uscc(rng, county), "roles": ["generator"], "county_code": county,
            "park_id": ctx.parks[park_key].id if park_key else None,
        })
        ctx.enterprises.append(enterprise)
        ctx.sectors[enterprise.id] = sector


USERS = (
    # username, organisation key, user role, role (zh, en)
    ("qiye", "enterprise:0", "admin", "企业管理员", "enterprise admin"),
    ("qiye2", "enterprise:0", "staff", "企业员工", "enterprise staff"),
    ("huanta", "service", "staff", "换炭服务", "carbon service"),
    ("zaisheng", "regen_tiantai", "admin", "再生单位 / 接受人", "regeneration plant / receiver"),
    ("yunshu", "carrier", "staff", "承运人", "carrier"),
    ("tiantai", "regulator:331023", "staff", "天台分局监管", "Tiantai regulator"),
    ("shiju", "regulator:city", "staff", "市生态环境局监管", "city regulator"),
    ("yuanqu", "park_admin:tiantai", "staff", "园区管委会", "park administration"),
)


def load_users(session: Session, ctx: DemoContext, operator_created: bool) -> None:
    ctx.users["admin"] = ctx.operator
    ctx.logins.append(Login("admin", "平台运维" if operator_created else "平台运维（密码未改动）",
                            "platform operator" if operator_created else "platform operator (password unchanged)",
                            "—"))
    for username, org_key, role, role_zh, role_en in USERS:
        organization = ctx.orgs[org_key]
        ctx.users[username] = create_user(session, ctx.operator_principal, {
            "username": username, "password": PASSWORD, "organization_id": organization.id, "role": role,
            "display_name": f"{username}（{role_zh}）",
        })
        ctx.logins.append(Login(username, role_zh, role_en, organization.name))


# ---------------------------------------------------------------- boxes

def _design(rng: random.Random, sector: str, carbon_type: str) -> dict[str, Any]:
    """Design parameters in the realistic ranges, sized for a replacement cycle of 2 weeks to 4 months."""
    spec = SECTORS[sector]
    for _ in range(200):
        airflow = float(rng.randrange(5000, 40001, 500))
        per_m3h = rng.uniform(0.06, 0.12) if carbon_type == "granular" else rng.uniform(0.03, 0.07)
        mass = float(min(3000, max(200, round(airflow * per_m3h / 50) * 50)))
        capacity = 0.15 if rng.random() < 0.25 else 0.10
        hours = float(rng.choice(spec["hours"]))
        target_cycle = rng.uniform(18, 100)
        conc = mass * capacity / (target_cycle * 1e-6 * airflow * hours)
        conc = float(min(150, max(20, round(conc))))
        cycle = mass * capacity / (conc * 1e-6 * airflow * hours)
        if 14 <= cycle <= 130:
            break
    low = rng.choice((150, 200, 300))
    return {
        "carbon_type": carbon_type, "design_fill_kg": mass, "design_airflow_m3_h": airflow,
        "design_removed_mg_m3": conc, "hours_per_day": hours, "adsorption_capacity": capacity,
        "emission_limit_mg_m3": spec["limit"], "pressure_drop_min_pa": float(low),
        "pressure_drop_max_pa": float(low + rng.choice((1000, 1200, 1500))),
    }


def _cycle_days(design: dict[str, Any]) -> float:
    """T = M × S ÷ (C × 10⁻⁶ × Q × t)."""
    return design["design_fill_kg"] * design["adsorption_capacity"] / (
        design["design_removed_mg_m3"] * 1e-6 * design["design_airflow_m3_h"] * design["hours_per_day"])


def _plan(rng: random.Random, target: str, cycle: float, now: datetime) -> BoxPlan:
    """Fill times (oldest first) that leave the box in ``target`` state at ``now``."""
    day = timedelta(days=1)
    if target == "grey_new":
        return BoxPlan(target, cycle, [])
    if target in ("green", "green_first", "red_iodine", "grey_stopped", "grey_decommissioned"):
        # Below 80% and more than 7 days (plus a margin) before the predicted date.
        upper = min(0.7, 1 - 8.5 / cycle)
        fraction = rng.uniform(0.03, max(upper, 0.05))
    elif target in ("yellow", "yellow_first"):
        # Either ≥80% saturation or within 7 days of the date; never past it.
        lower = min(0.82, 1 - 6.5 / cycle)
        fraction = rng.uniform(lower, 0.97)
    else:  # red_overdue
        fraction = rng.uniform(1.08, 1.9)
    last = now - fraction * cycle * day
    if target in ("grey_stopped", "grey_decommissioned"):
        # Stopped some time ago; its last fill came before that.
        stopped_at = now - rng.uniform(3, 60) * day
        last = stopped_at - fraction * cycle * day
    times = [last]
    if target not in ("green_first", "yellow_first"):
        start = now - rng.uniform(150, 420) * day
        while len(times) < 6:
            late = rng.random() < 0.22
            gap = cycle * (rng.uniform(1.02, 1.45) if late else rng.uniform(0.78, 0.98))
            previous = times[-1] - gap * day
            if previous < start:
                break
            times.append(previous)
    times = [t.replace(microsecond=0) for t in reversed(times)]
    plan = BoxPlan(target, cycle, times)
    if target in ("grey_stopped", "grey_decommissioned"):
        status = "stopped" if target == "grey_stopped" else "decommissioned"
        plan.status_change = (status, (times[-1] + (now - times[-1]) * rng.uniform(0.3, 0.95)).replace(microsecond=0))
    return plan


def _box_counts(rng: random.Random, enterprises: list[Organization], sectors: dict[int, str]) -> list[int]:
    weights = [SECTORS[sectors[e.id]]["weight"] * rng.uniform(0.7, 1.3) for e in enterprises]
    weights[0] = 0  # the showcase enterprise gets exactly len(SHOWCASE_TARGETS)
    rest = BOX_COUNT - len(SHOWCASE_TARGETS)
    raw = [rest * w / sum(weights) for w in weights]
    counts = [max(int(r), 1) if w else 0 for r, w in zip(raw, weights)]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - int(raw[i]), reverse=True)
    i = 0
    while sum(counts) < rest:
        counts[order[i % len(order)]] += 1
        i += 1
    counts[0] = len(SHOWCASE_TARGETS)
    return counts


def _iodine(rng: random.Random, carbon_type: str, bad: bool) -> float:
    if carbon_type == "honeycomb":
        return float(rng.randint(590, 640) if bad else rng.randint(680, 820))
    return float(rng.randint(700, 785) if bad else rng.randint(820, 1050))


def load_boxes(session: Session, ctx: DemoContext) -> None:
    """Register the boxes and replay their fill histories in time order."""
    rng, now = ctx.rng, ctx.now
    targets = [t for t, _ in TARGET_WEIGHTS]
    weights = [w for _, w in TARGET_WEIGHTS]
    counts = _box_counts(rng, ctx.enterprises, ctx.sectors)
    used_codes: set[str] = set()
    for index, (enterprise, count) in enumerate(zip(ctx.enterprises, counts)):
        sector = ctx.sectors[enterprise.id]
        workshops = SECTORS[sector]["workshops"]
        for n in range(count):
            target = SHOWCASE_TARGETS[n] if index == 0 else rng.choices(targets, weights)[0]
            carbon_type = "honeycomb" if rng.random() < 0.15 else "granular"
            if index == 0 and n in (1, 5):
                carbon_type = "honeycomb"
            design = _design(rng, sector, carbon_type)
            plan = _plan(rng, target, _cycle_days(design), now)
            # The showcase enterprise replaces some of its boxes itself; the carbon service does the rest.
            self_service = index == 0 and n % 2 == 1
            plan.actor = "qiye2" if self_service else "huanta"
            while True:
                code = codes.make_code(enterprise.county_code, "".join(rng.choice(codes.ALPHABET) for _ in range(5)))
                if code not in used_codes:
                    used_codes.add(code)
                    break
            created = (plan.fill_times[0] if plan.fill_times else now - timedelta(days=rng.uniform(1, 20)))
            created = (created - timedelta(days=rng.uniform(0.5, 6))).replace(microsecond=0)
            workshop = workshops[n % len(workshops)]
            box = box_services.register_box(session, ctx.operator_principal, {
                **design, "code": code, "enterprise_id": enterprise.id,
                "service_org_id": None if self_service else ctx.orgs["service"].id,
                "name": f"{workshop}{'蜂窝' if carbon_type == 'honeycomb' else ''}活性炭吸附箱 {n + 1}#",
                "facility_code": f"TA{n + 1:03d}", "outlet_code": f"DA{n // 2 + 1:03d}",
                # The showcase enterprise has no sensors, so its colours come from the fills alone.
                "has_sensors": rng.random() < 0.25 and index != 0,
            }, now=created)
            ctx.boxes.append(box)
            ctx.plans[box.id] = plan
    session.flush()
    _replay_fills(session, ctx)


def _replay_fills(session: Session, ctx: DemoContext) -> None:
    rng = ctx.rng
    batch_seq: dict[str, int] = {}
    for box in ctx.boxes:
        plan = ctx.plans[box.id]
        actor = ctx.principal(plan.actor)
        enterprise = box.enterprise
        supplier = ctx.orgs["regen_wenling"] if enterprise.county_code in ("331081", "331083") else ctx.orgs["regen_tiantai"]
        previous_mass: float | None = None
        for i, filled_at in enumerate(plan.fill_times):
            last = i == len(plan.fill_times) - 1
            if previous_mass is not None and filled_at - plan.fill_times[i - 1] > timedelta(days=plan.cycle_days):
                # A late replacement: the box went red (overdue) before it; the colour history
                # records that spell, so red box-days count. (On-time ones skip the extra
                # evaluation: it is the slow part of the load.)
                box_services.refresh_colours(session, [box], filled_at - timedelta(minutes=1))
            regenerated = box.carbon_type == "granular" and rng.random() < 0.7
            day_key = f"{filled_at:%y%m%d}"
            batch_seq[day_key] = batch_seq.get(day_key, 0) + 1
            mass = round(float(box.design_fill_kg) * rng.uniform(0.98, 1.02))
            data: dict[str, Any] = {
                "filled_at": filled_at, "mass_kg": float(mass), "carbon_type": box.carbon_type,
                "iodine_mg_g": _iodine(rng, box.carbon_type, bad=last and plan.target == "red_iodine"),
                "supplier_org_id": supplier.id if regenerated else None,
                "supplier_name": supplier.name if regenerated else VIRGIN_SUPPLIER,
                "batch_no": (f"ZS{day_key}-{batch_seq[day_key]:02d}" if regenerated
                             else f"JY{filled_at:%y%m}-{rng.randint(1, 40):03d}"),
                "note": "再生炭" if regenerated else "",
            }
            if previous_mass is not None:
                # Loaded carbon weighs more than it did new (adsorbed VOCs and moisture).
                data["removed_waste_kg"] = round(float(previous_mass) * rng.uniform(1.05, 1.25), 1)
            box_services.record_fill(session, actor, box, data, now=filled_at)
            ctx.fills += 1
            previous_mass = float(mass)
        if plan.status_change:
            status, at = plan.status_change
            box_services.refresh_colours(session, [box], at - timedelta(minutes=1))
            box_services.set_status(session, actor, box, status, now=at)


# ---------------------------------------------------------------- the whole

def summarise(session: Session, state: str, logins: list[Login] | None = None) -> dict[str, Any]:
    colours = dict(session.execute(select(Box.colour, func.count()).group_by(Box.colour)).all())
    if logins is None:
        logins = []
        for username, org_key, _role, role_zh, role_en in (("admin", None, "admin", "平台运维", "platform operator"),
                                                            *USERS):
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
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    rng = random.Random(seed)
    ensure_counties(session)
    operator, operator_created = load_operator(session, now - timedelta(days=430))
    ctx = DemoContext(now=now, rng=rng, operator=operator)
    load_parks(session, ctx)
    load_organisations(session, ctx)
    load_users(session, ctx, operator_created)
    import_demo_extensions()
    with _checks_deferred(REPLAY_DEFERRED_CHECKS):
        load_boxes(session, ctx)
        for extension in DEMO_EXTENSIONS:
            extension(session, ctx, now)
    # Today's colours, with the time each began (e.g. the day a box went overdue).
    box_services.refresh_colours(session, ctx.boxes, now)
    session.commit()
    return summarise(session, "loaded", ctx.logins)
