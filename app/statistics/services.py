"""Statistics per park, county and city for a month, quarter or year (product.md "Statistics").

Every figure is aggregated in SQL: the scope (the enterprises of a park, a county or the whole
city) and the period (UTC bounds of Asia/Shanghai calendar periods, computed here in Python)
are in the WHERE clause, and a request runs a fixed number of queries whatever the data size.
No database date functions are used, so SQLite and PostgreSQL give the same answers; the one
duration (red box-days) uses :class:`EpochSeconds`, compiled per dialect.

No Flask here: callers pass the session, the acting :class:`Principal` and ``now``.

Definitions (also returned in every response under ``definitions``):

- The scope's *enterprises* are the organisations whose park (park scope) or county (county scope)
  it is; the city is every organisation. Waste figures follow the waste of those enterprises:
  ledger records they keep, manifests they consign, boxes they run.
- Generated / into storage: ledger records of stage 产生 / 入库 dated in the period;
  in storage at the end: generated + returned − out of storage up to the end of the period.
- Shipped: lines of manifests picked up in the period (rejected ones included: they left).
- Received: weighed kg of manifests received in the period; accepted kg beside it.
- Processed: accepted kg of manifest lines processed in the period, by 利用/处置方式 code:
  utilised = every utilisation code (R1–R9, R15, C2, C3); incinerated = D10; cement kiln = C1;
  landfilled = the landfill codes (D1 only); other = the rest (D9, D16).
- Landfill share = landfilled ÷ processed (None when nothing was processed).
- Regeneration rate = waste carbon (``waste_carbon_codes`` of ledger_rules.yaml, 900-039-49…) of
  the scope's enterprises processed in the period that regeneration batches have consumed
  (``consumed_kg``, so far) ÷ that waste carbon processed.
- Regenerated fills: fills in the period at the scope's boxes naming a regeneration batch,
  by count and by kg, ÷ all fills in the period.
- Manifests (picked up in the period): on time = received and not overdue; overdue = received
  late, refused late, or still in transit past the deadline; discrepant and rejected as flagged.
- Boxes by colour at the end of the period (now for the current period) from the colour history;
  red box-days = days boxes spent red within the period (clipped to its bounds and to now).
- On-time replacement: a replacement in the period is late when the carbon it replaced was spent
  at the time, i.e. saturated (saturation_full) or past its predicted replacement date
  (replacement_overdue), as the replacement recorded it (``Fill.replaced_overdue``; fills recorded
  before that was kept: the box turned red for one of these between the two fills); on-time
  rate = on time ÷ replacements.
- Generation intensity = generated t ÷ imported industrial value added (10⁴ yuan) of the same
  scope and period (a quarter or year not imported as such: the sum of its months when all are
  imported); its year-on-year growth compares with the same period a year earlier.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import String, and_, case, cast, func, literal, or_, select, true, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import Float

from app.accounts.models import County, Organization, Park
from app.accounts.services import Principal
from app.boxes.colour import SPENT_CARBON_RULES
from app.boxes.models import Box, ColourChange, Fill
from app.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.common.timeutil import SHANGHAI, utcnow
from app.common.types import UTCDateTime
from app.ledger.catalogue import load_catalogue
from app.ledger.models import LedgerRecord, Manifest, ManifestLine
from app.ledger.services import kg, methods, rules
from app.statistics.models import VALUE_ADDED_SCOPES, ValueAdded

DEFAULT_BASE_YEAR = 2024  # overridden by the STATISTICS_BASE_YEAR setting
FIRST_YEAR = 2000
MAX_ID = 2**31 - 1  # the integer primary keys (PostgreSQL INTEGER)
COUNTY_CODE_RE = re.compile(r"^\d{6}$", re.ASCII)
COLOURS = ("grey", "green", "yellow", "red")
TREATMENTS = ("utilised", "incinerated", "cement_kiln", "landfilled", "other")
LATE_REPLACEMENT_RULES = SPENT_CARBON_RULES
RECEIVED_STATES = ("received", "processed", "closed")

DEFINITIONS = {
    "scope": "enterprises whose park/county is the scope's (the city: all); their ledger, manifests and boxes",
    "generated_kg": "ledger records of stage generation (产生) dated in the period",
    "into_storage_kg": "ledger records of stage storage (入库) dated in the period",
    "in_storage_end_kg": "generated + returned − out of storage up to the end of the period",
    "shipped_kg": "quantity on manifests picked up in the period (rejected ones included)",
    "received_kg": "weighed quantity of manifests received in the period",
    "processed_kg": "accepted quantity of manifest lines processed in the period (any method code)",
    "utilised_kg": "processed with a utilisation code (R1–R9, R15, C2, C3)",
    "incinerated_kg": "processed with D10", "cement_kiln_kg": "processed with C1",
    "landfilled_kg": "processed with D1 (only D1 counts as landfill)", "other_kg": "processed with D9, D16",
    "landfill_share": "landfilled_kg ÷ processed_kg; null when nothing was processed",
    "change_share": "current landfill share minus the compared period's (negative = towards zero landfill)",
    "regeneration_rate_share": "waste carbon processed in the period that regeneration batches consumed ÷ "
                               "waste carbon processed in the period",
    "regenerated_fills_share": "fills in the period naming a regeneration batch ÷ all fills (count and kg)",
    "on_time_count": "manifests picked up in the period, received before the deadline (5 working days)",
    "overdue_count": "received or refused late, or in transit past the deadline",
    "boxes_by_colour": "colour at the end of the period (now for the current period), from the colour history",
    "red_box_days": "days boxes spent red within the period, clipped to the period and to now",
    "on_time_replacement_share": "replacements in the period made before the replaced carbon was saturated or "
                                 "past its predicted date ÷ replacements in the period",
    "generation_intensity_t_per_10k_yuan": "generated t ÷ imported industrial value added (10⁴ yuan); a quarter "
                                           "or year without its own figure: the sum of all its months",
    "yoy_growth_share": "(intensity − intensity of the same period a year earlier) ÷ the latter",
}


# ---------------------------------------------------------------- periods

# ASCII digits only: ``\d`` alone also takes full-width and other Unicode digits (２０２５).
PERIOD_RE = re.compile(r"^(\d{4})(?:-(?:Q([1-4])|(0[1-9]|1[0-2])))?$", re.ASCII)


@dataclass(frozen=True)
class Period:
    """An Asia/Shanghai calendar year, quarter or month; a day starts at 00:00 Shanghai."""

    kind: str  # year | quarter | month
    year: int
    number: int = 1  # the quarter (1–4) or month (1–12); 1 for a year

    @property
    def label(self) -> str:
        if self.kind == "year":
            return f"{self.year}"
        if self.kind == "quarter":
            return f"{self.year}-Q{self.number}"
        return f"{self.year}-{self.number:02d}"

    @property
    def first_month(self) -> int:
        return {"year": 1, "quarter": 3 * self.number - 2, "month": self.number}[self.kind]

    @property
    def months(self) -> int:
        return {"year": 12, "quarter": 3, "month": 1}[self.kind]

    @property
    def start_local(self) -> date:
        return date(self.year, self.first_month, 1)

    @property
    def end_local(self) -> date:
        """The first day after the period."""
        month = self.first_month + self.months
        return date(self.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)

    @property
    def start_utc(self) -> datetime:
        return _local_midnight(self.start_local)

    @property
    def end_utc(self) -> datetime:
        return _local_midnight(self.end_local)

    def previous(self) -> "Period":
        if self.kind == "year":
            return Period("year", self.year - 1)
        last = 4 if self.kind == "quarter" else 12
        return Period(self.kind, self.year, self.number - 1) if self.number > 1 else Period(self.kind, self.year - 1, last)

    def same_period_in(self, year: int) -> "Period":
        return Period(self.kind, year, self.number)

    def contains(self, moment: datetime) -> bool:
        return self.start_utc <= moment < self.end_utc

    def __str__(self) -> str:
        return self.label


def _local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).astimezone(timezone.utc)


def parse_period(text: Any) -> Period:
    """``2025`` (year), ``2025-Q3`` (quarter) or ``2025-07`` (month); anything else → 422 on ``period``."""
    if isinstance(text, Period):
        return text
    raw = (text or "").strip() if isinstance(text, str) else ""
    match = PERIOD_RE.match(raw.upper())
    if not match:
        raise InvalidInput.field("period", f"{text!r} is not a period: use YYYY, YYYY-Qn or YYYY-MM (e.g. 2025, "
                                           "2025-Q3, 2025-07)")
    year = int(match.group(1))
    if year < FIRST_YEAR:
        raise InvalidInput.field("period", f"no statistics before {FIRST_YEAR}")
    if match.group(2):
        return Period("quarter", year, int(match.group(2)))
    if match.group(3):
        return Period("month", year, int(match.group(3)))
    return Period("year", year)


def check_not_future(period: Period, now: datetime) -> None:
    """A period that has not begun has no statistics (the current one has: up to now)."""
    if period.start_utc > now:
        raise InvalidInput.field("period", f"{period.label} is in the future")


def month_of(moment: datetime) -> Period:
    local = moment.astimezone(SHANGHAI)
    return Period("month", local.year, local.month)


def months_until(last: Period, count: int = 12) -> list[Period]:
    """``count`` consecutive months ending with the last month of ``last``."""
    month = Period("month", last.end_local.year if last.end_local.month > 1 else last.end_local.year - 1,
                   (last.end_local.month - 2) % 12 + 1)
    out = [month]
    while len(out) < count:
        out.append(out[-1].previous())
    return list(reversed(out))


# ---------------------------------------------------------------- scopes and who may read them

@dataclass(frozen=True)
class Scope:
    kind: str  # park | county | city
    park_id: int | None = None
    county_code: str | None = None
    name: str = "台州市"
    name_en: str = "Taizhou"  # for the English page (a park has no English name: its Chinese one)

    @property
    def key(self) -> str:
        if self.kind == "park":
            return f"park:{self.park_id}"
        if self.kind == "county":
            return f"county:{self.county_code}"
        return "city"

    def enterprises(self, column):
        """A SQL condition: ``column`` (an organisation id) is one of the scope's enterprises."""
        if self.kind == "park":
            return column.in_(select(Organization.id).where(Organization.park_id == self.park_id))
        if self.kind == "county":
            return column.in_(select(Organization.id).where(Organization.county_code == self.county_code))
        return true()

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "park_id": self.park_id, "county_code": self.county_code, "name": self.name}


CITY = Scope("city")


def resolve_scope(session: Session, kind: str, ident: Any = None) -> Scope:
    """The park (by id), county (by GB/T 2260 code) or the city; unknown ones → 404."""
    # An id no park can have (beyond the integer column, or not a number) or a code that is not
    # six digits (a NUL byte, say, that PostgreSQL refuses) is looked up nowhere: 404 on both databases.
    if kind == "park":
        valid = isinstance(ident, int) and not isinstance(ident, bool) and 0 < ident <= MAX_ID
        park = session.get(Park, ident) if valid else None
        if park is None:
            raise NotFound(f"园区 {ident} 不存在 (park {ident} not found)")
        return Scope("park", park.id, park.county_code, park.name, park.name)
    if kind == "county":
        valid = isinstance(ident, str) and COUNTY_CODE_RE.match(ident) is not None
        county = session.get(County, ident) if valid else None
        if county is None:
            raise NotFound(f"区县 {ident} 不存在 (county {ident} not found)")
        return Scope("county", None, county.code, county.name, county.name_en or county.name)
    return CITY


def can_read(actor: Principal, scope: Scope) -> bool:
    """Operators and city regulators: everything; a county regulator: its county and the parks in
    it; a park administration: its own park. Enterprises and services read no area statistics."""
    if actor.is_operator:
        return True
    org = actor.organization
    if org is None or actor.is_device:
        return False
    if org.has_role("regulator"):
        if org.county_code is None:
            return True
        if scope.kind in ("county", "park") and scope.county_code == org.county_code:
            return True
    return bool(org.has_role("park_admin") and org.park_id is not None and scope.kind == "park"
                and scope.park_id == org.park_id)


def authorise(actor: Principal, scope: Scope) -> None:
    # Parks and counties are public registry facts (GET /parks, /counties), so a scope outside the
    # caller's jurisdiction is "forbidden", not "not found".
    if not can_read(actor, scope):
        raise Forbidden("无权查看该范围的统计 (statistics of this area are outside your jurisdiction)")


def readable_scopes(session: Session, actor: Principal) -> list[Scope]:
    """The scopes ``actor`` may read (the page's picker), city first, then counties, then parks."""
    scopes = [CITY] if can_read(actor, CITY) else []
    counties = session.scalars(select(County).order_by(County.code))
    scopes += [s for s in (Scope("county", None, c.code, c.name, c.name_en or c.name) for c in counties)
               if can_read(actor, s)]
    parks = session.scalars(select(Park).order_by(Park.county_code, Park.id))
    scopes += [s for s in (Scope("park", p.id, p.county_code, p.name, p.name) for p in parks) if can_read(actor, s)]
    return scopes


# ---------------------------------------------------------------- SQL helpers

class EpochSeconds(FunctionElement):
    """Seconds since 1970-01-01 UTC of a timestamp column, on SQLite and PostgreSQL."""

    type = Float()
    inherit_cache = True


@compiles(EpochSeconds)
def _epoch_default(element, compiler, **kw):
    return f"EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})"


@compiles(EpochSeconds, "sqlite")
def _epoch_sqlite(element, compiler, **kw):
    # SQLite keeps UTC timestamps as text; julianday() reads them (fractions of seconds too).
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


def _sum(expr):
    return func.coalesce(func.sum(expr), 0)


def _count_if(condition):
    return _sum(case((condition, 1), else_=0))


def _in(column, period: Period):
    return and_(column >= period.start_utc, column < period.end_utc)


def _f(value: Any) -> float:
    return kg(float(value or 0.0))


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole else None


def _treatment(session: Session, code: str) -> str:
    method = methods(session).get(code)
    if method is None:
        return "other"
    if method.landfill:
        return "landfilled"
    if method.kind == "utilisation":
        return "utilised"
    return {"D10": "incinerated", "C1": "cement_kiln"}.get(code, "other")


def _landfill_codes(session: Session) -> list[str]:
    return sorted(code for code, m in methods(session).items() if m.landfill)


# ---------------------------------------------------------------- the metrics

def landfill_by_period(session: Session, scope: Scope, periods: list[Period]) -> list[dict[str, Any]]:
    """Processed and landfilled kg and the landfill share of each period, in one query."""
    if not periods:
        return []
    # The same period may be asked twice (a year's previous period is the base year by default):
    # a CASE gives a row to its first matching bucket only, so each distinct period is one bucket.
    distinct = list(dict.fromkeys(periods))
    # Bucketed in a subquery and grouped by its column: PostgreSQL would not match a CASE with
    # bound parameters in the select list to the "same" CASE in GROUP BY.
    bucket = case(*[(_in(Manifest.processed_at, p), i) for i, p in enumerate(distinct)], else_=-1)
    landfill = _landfill_codes(session)
    lines = (select(bucket.label("bucket"), ManifestLine.accepted_kg.label("accepted_kg"),
                    case((ManifestLine.method_code.in_(landfill), ManifestLine.accepted_kg), else_=0).label("landfilled"))
             .join(Manifest, Manifest.id == ManifestLine.manifest_id)
             .where(scope.enterprises(Manifest.consignor_id), ManifestLine.method_code.is_not(None),
                    # one index range per period, not the whole span between the earliest and the latest
                    or_(*[_in(Manifest.processed_at, p) for p in distinct]))).subquery()
    rows = session.execute(select(lines.c.bucket, _sum(lines.c.accepted_kg), _sum(lines.c.landfilled))
                           .group_by(lines.c.bucket))
    found = {int(b): (_f(processed), _f(landfilled)) for b, processed, landfilled in rows}
    out = []
    for p in periods:
        processed, landfilled = found.get(distinct.index(p), (0.0, 0.0))
        out.append({"period": p.label, "processed_kg": processed, "landfilled_kg": landfilled,
                    "landfill_share": _share(landfilled, processed)})
    return out


def landfill_series(session: Session, scope: Scope, last: Period, count: int = 12) -> list[dict[str, Any]]:
    """The landfill share per month over ``count`` months ending with ``last`` (趋零填埋 chart)."""
    return landfill_by_period(session, scope, months_until(last, count))


def _ledger(session: Session, scope: Scope, period: Period, last_year: Period) -> tuple[dict[str, dict], float]:
    in_period = _in(LedgerRecord.occurred_at, period)
    qty = LedgerRecord.quantity_kg
    stage = LedgerRecord.stage
    rows = session.execute(
        select(LedgerRecord.waste_code,
               _sum(case((and_(stage == "generation", in_period), qty), else_=0)),
               _sum(case((and_(stage == "storage", in_period), qty), else_=0)),
               _sum(case((and_(stage == "returned", in_period), qty), else_=0)),
               _sum(case((stage.in_(("generation", "returned")), qty), (stage == "out_of_storage", -qty), else_=0)),
               _sum(case((and_(stage == "generation", _in(LedgerRecord.occurred_at, last_year)), qty), else_=0)))
        .where(scope.enterprises(LedgerRecord.enterprise_id), LedgerRecord.occurred_at < period.end_utc)
        .group_by(LedgerRecord.waste_code))
    codes: dict[str, dict] = {}
    generated_last_year = 0.0
    for code, generated, stored, returned, on_hand, generated_ly in rows:
        codes[code] = {"generated_kg": _f(generated), "into_storage_kg": _f(stored), "returned_kg": _f(returned),
                       "in_storage_end_kg": _f(on_hand)}
        generated_last_year += float(generated_ly or 0)
    return codes, kg(generated_last_year)


def _manifest_lines(session: Session, scope: Scope, period: Period, now: datetime):
    """Shipped (picked up), received and processed lines of the period: three grouped queries."""
    base = (select().select_from(ManifestLine).join(Manifest, Manifest.id == ManifestLine.manifest_id)
            .where(scope.enterprises(Manifest.consignor_id)))
    shipped = dict(session.execute(
        base.add_columns(ManifestLine.waste_code, _sum(ManifestLine.quantity_kg))
        .where(_in(Manifest.picked_up_at, period)).group_by(ManifestLine.waste_code)).all())
    received = {code: (r, a) for code, r, a in session.execute(
        base.add_columns(ManifestLine.waste_code, _sum(ManifestLine.received_kg), _sum(ManifestLine.accepted_kg))
        .where(_in(Manifest.received_at, period)).group_by(ManifestLine.waste_code))}
    carbon = rules(session).waste_carbon_codes
    lines = (base.add_columns(ManifestLine.method_code, ManifestLine.waste_code, ManifestLine.accepted_kg,
                              ManifestLine.consumed_kg)
             .where(_in(Manifest.processed_at, period), ManifestLine.method_code.is_not(None))).subquery()
    is_carbon = lines.c.waste_code.in_(carbon)
    processed = list(session.execute(
        select(lines.c.method_code, _sum(case((is_carbon, lines.c.accepted_kg), else_=0)),
               _sum(lines.c.accepted_kg), _sum(case((is_carbon, lines.c.consumed_kg), else_=0)))
        .group_by(lines.c.method_code)))
    return shipped, received, processed


def _manifest_counts(session: Session, scope: Scope, period: Period, now: datetime) -> dict[str, Any]:
    m = Manifest
    late_in_transit = and_(m.status == "in_transit", m.receipt_due_at <= now)
    overdue = or_(m.overdue.is_(True), late_in_transit)
    row = session.execute(
        select(func.count(m.id),
               _count_if(and_(m.status.in_(RECEIVED_STATES), m.overdue.is_(False))),
               _count_if(overdue), _count_if(m.discrepant.is_(True)), _count_if(m.status == "rejected"),
               _count_if(and_(m.status == "in_transit", ~late_in_transit)))
        .where(scope.enterprises(m.consignor_id), _in(m.picked_up_at, period))).one()
    shipped, on_time, overdue_n, discrepant, rejected, pending = (int(x or 0) for x in row)
    return {"shipped_count": shipped, "on_time_count": on_time, "overdue_count": overdue_n,
            "discrepant_count": discrepant, "rejected_count": rejected, "in_transit_count": pending,
            "on_time_share": _share(on_time, on_time + overdue_n)}


def _fills(session: Session, scope: Scope, period: Period) -> dict[str, Any]:
    """Fills, regenerated fills, replacements on time and the carbon they replaced: one query.

    Only the period's fills are read; each one's previous fill (its time and mass) is found
    through the (box_id, filled_at) index, so the cost follows the period, not the history.
    """
    earlier = aliased(Fill)

    def previous(column):
        return (select(column).where(earlier.box_id == Fill.box_id, earlier.filled_at < Fill.filled_at)
                .order_by(earlier.filled_at.desc()).limit(1).scalar_subquery())

    sub = (select(Fill.box_id, Fill.kind, Fill.filled_at, Fill.mass_kg, Fill.regeneration_batch_id,
                  Fill.removed_waste_kg, Fill.replaced_overdue, previous(earlier.mass_kg).label("previous_kg"),
                  previous(earlier.filled_at).label("previous_at"))
           .join(Box, Box.id == Fill.box_id)
           .where(scope.enterprises(Box.enterprise_id), _in(Fill.filled_at, period))).subquery()
    reasons = cast(ColourChange.reasons, String)
    turned_red = (select(ColourChange.id).where(
        ColourChange.box_id == sub.c.box_id, ColourChange.colour == "red",
        ColourChange.changed_at > sub.c.previous_at, ColourChange.changed_at < sub.c.filled_at,
        or_(*[reasons.like(f"%{code}%") for code in LATE_REPLACEMENT_RULES])).exists())
    # A replacement knows whether the carbon it replaced was spent (Fill.replaced_overdue); fills
    # recorded before that was kept fall back on the colour history.
    late = or_(sub.c.replaced_overdue.is_(True), and_(sub.c.replaced_overdue.is_(None), turned_red))
    regenerated = sub.c.regeneration_batch_id.is_not(None)
    replacement = sub.c.kind == "replacement"
    row = session.execute(
        select(func.count(), _sum(sub.c.mass_kg), _count_if(regenerated),
               _sum(case((regenerated, sub.c.mass_kg), else_=0)), _count_if(replacement),
               _count_if(and_(replacement, late)), _sum(case((replacement, sub.c.previous_kg), else_=0)),
               _sum(case((replacement, sub.c.removed_waste_kg), else_=0)))).one()
    fills, fills_kg, regen, regen_kg, replacements, late, replaced_kg, weighed_kg = row
    fills, regen, replacements, late = int(fills or 0), int(regen or 0), int(replacements or 0), int(late or 0)
    return {
        "fills_count": fills, "fills_kg": _f(fills_kg), "regenerated_fills_count": regen,
        "regenerated_fills_kg": _f(regen_kg), "regenerated_fills_count_share": _share(regen, fills),
        "regenerated_fills_kg_share": _share(_f(regen_kg), _f(fills_kg)),
        "replacement_count": replacements, "on_time_replacement_count": replacements - late,
        "late_replacement_count": late, "on_time_replacement_share": _share(replacements - late, replacements),
        "replaced_carbon_kg": _f(replaced_kg), "waste_carbon_weighed_kg": _f(weighed_kg),
    }


def _boxes(session: Session, scope: Scope, period: Period, now: datetime) -> dict[str, Any]:
    """Boxes by colour at ``at`` and red box-days in the period: two queries.

    Neither reads a box's whole colour history: the colour at an instant is the box's last change
    before it, found through the (box_id, changed_at) index; red spans are the changes inside the
    period plus, per box, the colour it already had when the period began.
    """
    at = min(period.end_utc, now)
    start = period.start_utc
    boxes_in_scope = and_(scope.enterprises(Box.enterprise_id), Box.created_at < at)

    def colour_before(moment: datetime):
        cc = aliased(ColourChange)
        return (select(cc.colour).where(cc.box_id == Box.id, cc.changed_at < moment)
                .order_by(cc.changed_at.desc(), cc.id.desc()).limit(1).correlate(Box).scalar_subquery())

    colours = select(colour_before(at).label("colour")).where(boxes_in_scope).subquery()
    counts: dict[str, int] = {}
    for colour, n in session.execute(select(colours.c.colour, func.count()).group_by(colours.c.colour)):
        counts[colour or "grey"] = counts.get(colour or "grey", 0) + int(n)  # no change yet: grey
    # Red spans: each change lasts until the box's next change (or ``at``). The colour a box had at
    # the start of the period (a change before it) opens a span at the start.
    opening = select(Box.id.label("box_id"), colour_before(start).label("colour"),
                     literal(start, UTCDateTime()).label("changed_at"), literal(0).label("ord"),
                     literal(0).label("cid")).where(boxes_in_scope)
    inside = (select(ColourChange.box_id, ColourChange.colour, ColourChange.changed_at, literal(1).label("ord"),
                     ColourChange.id.label("cid"))
              .join(Box, Box.id == ColourChange.box_id)
              .where(scope.enterprises(Box.enterprise_id), ColourChange.changed_at >= start,
                     ColourChange.changed_at < at))
    changes = union_all(opening, inside).subquery()
    spans = select(changes.c.colour, changes.c.changed_at,
                   func.lead(changes.c.changed_at, type_=UTCDateTime()).over(
                       partition_by=changes.c.box_id,
                       order_by=(changes.c.changed_at, changes.c.ord, changes.c.cid)).label("until")).subquery()
    start_s, end_s = start.timestamp(), at.timestamp()
    begin = EpochSeconds(spans.c.changed_at)
    finish = func.coalesce(EpochSeconds(spans.c.until), literal(end_s))
    a = case((begin > start_s, begin), else_=literal(start_s))
    b = case((finish < end_s, finish), else_=literal(end_s))
    red_seconds = session.scalar(select(_sum(case((b > a, b - a), else_=0))).where(spans.c.colour == "red"))
    by_colour = {c: int(counts.get(c, 0)) for c in COLOURS}
    return {"at": at, "by_colour": by_colour, "total_count": sum(by_colour.values()),
            "red_box_days": round(float(red_seconds or 0) / 86400, 4)}


@dataclass(frozen=True)
class ValueAddedFigure:
    value_10k_yuan: float
    source: str


def _months_of(period: Period) -> list[str]:
    return [Period("month", period.year, period.first_month + i).label for i in range(period.months)]


def _value_added(session: Session, scope: Scope, periods: list[Period]) -> dict[str, ValueAddedFigure]:
    """The imported value added of each period, in one query. A quarter or a year that was not
    imported as such is the sum of its months when every one of them was (statistics bureaux
    publish monthly figures); a partial sum is never used."""
    months = {p.label: _months_of(p) for p in periods if p.kind != "month"}
    labels = {p.label for p in periods} | {m for ms in months.values() for m in ms}
    rows = {row.period: row for row in session.scalars(
        select(ValueAdded).where(ValueAdded.scope_key == scope.key, ValueAdded.period.in_(sorted(labels))))}
    out: dict[str, ValueAddedFigure] = {}
    for p in periods:
        row = rows.get(p.label)
        if row is not None:
            out[p.label] = ValueAddedFigure(row.value_added_10k_yuan, row.source_department)
        elif p.label in months and all(m in rows for m in months[p.label]):
            parts = [rows[m] for m in months[p.label]]
            sources = "、".join(sorted({r.source_department for r in parts}))
            out[p.label] = ValueAddedFigure(round(sum(r.value_added_10k_yuan for r in parts), 4),
                                            f"{sources}（{len(parts)} 个月合计 / sum of {len(parts)} months）")
    return out


def _n(value: float) -> str:
    """A kg figure for the explanations: grams at most, no exponent, no trailing zeros."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _gap(code: str, gap_kg: float, zh: str, en: str, **numbers: float) -> dict[str, Any]:
    return {"code": code, "gap_kg": kg(gap_kg), "zh": zh, "en": en, "numbers": numbers}


def _mass_balance(fills: dict, generated: float, carbon_generated: float, shipped: float,
                  shipped_received: tuple[float, float], returned: float, stock_change: float) -> dict[str, Any]:
    replaced, weighed = fills["replaced_carbon_kg"], fills["waste_carbon_weighed_kg"]
    on_manifests, weighed_in = shipped_received
    gaps = [
        _gap("replaced_vs_weighed", replaced - weighed,
             f"本期更换换下活性炭（装填量）{_n(replaced)} kg，称重废炭 {_n(weighed)} kg，差 {_n(replaced - weighed)} kg"
             "（为正表示废炭少于装入的炭，去向需核实）",
             f"Replacements removed carbon filled at {_n(replaced)} kg and {_n(weighed)} kg of waste carbon was weighed: "
             f"gap {_n(replaced - weighed)} kg (positive: less waste than carbon, to be checked)",
             replaced_carbon_kg=replaced, waste_carbon_weighed_kg=weighed),
        _gap("generated_vs_shipped", generated - shipped,
             f"本期产生 {_n(generated)} kg，运出 {_n(shipped)} kg，差 {_n(generated - shipped)} kg；"
             f"退回 {_n(returned)} kg，期内库存变化 {_n(stock_change)} kg（= 产生 − 运出 + 退回）",
             f"Generated {_n(generated)} kg, shipped {_n(shipped)} kg: gap {_n(generated - shipped)} kg; returned "
             f"{_n(returned)} kg; stock changed by {_n(stock_change)} kg (= generated − shipped + returned)",
             generated_kg=generated, shipped_kg=shipped, returned_kg=returned, stock_change_kg=stock_change),
        _gap("shipped_vs_received", on_manifests - weighed_in,
             f"本期运出且已接收的联单运出 {_n(on_manifests)} kg，接受人称重 {_n(weighed_in)} kg，差 "
             f"{_n(on_manifests - weighed_in)} kg（运输途中的差异）",
             f"Manifests picked up in the period and received: {_n(on_manifests)} kg shipped, {_n(weighed_in)} kg "
             f"weighed by the receivers: gap {_n(on_manifests - weighed_in)} kg (lost or gained in transit)",
             shipped_kg=on_manifests, received_kg=weighed_in),
    ]
    return {"filled_kg": fills["fills_kg"], "replaced_carbon_kg": replaced, "waste_carbon_weighed_kg": weighed,
            "waste_carbon_generated_kg": carbon_generated, "generated_kg": generated, "shipped_kg": shipped,
            "received_kg": weighed_in, "gaps": gaps}


def _shipped_and_received(session: Session, scope: Scope, period: Period) -> tuple[float, float]:
    row = session.execute(
        select(_sum(ManifestLine.quantity_kg), _sum(ManifestLine.received_kg))
        .join(Manifest, Manifest.id == ManifestLine.manifest_id)
        .where(scope.enterprises(Manifest.consignor_id), _in(Manifest.picked_up_at, period),
               Manifest.status.in_(RECEIVED_STATES))).one()
    return _f(row[0]), _f(row[1])


def compute(session: Session, scope: Scope, period: Period, base_year: int | None = None,
            now: datetime | None = None) -> dict[str, Any]:
    """Every metric of ``scope`` in ``period`` (no authorisation: callers check it)."""
    now = now or utcnow()
    base_year = base_year or DEFAULT_BASE_YEAR
    last_year = period.same_period_in(period.year - 1)
    catalogue = load_catalogue().entries

    codes, generated_last_year = _ledger(session, scope, period, last_year)
    shipped, received, processed_rows = _manifest_lines(session, scope, period, now)
    for code in set(shipped) | set(received):
        codes.setdefault(code, {"generated_kg": 0.0, "into_storage_kg": 0.0, "returned_kg": 0.0,
                                "in_storage_end_kg": 0.0})
    by_code = []
    for code in sorted(codes):
        item = codes[code]
        r, a = received.get(code, (0, 0))
        entry = catalogue.get(code)
        by_code.append({"waste_code": code, "waste_name": entry.description if entry else "", **item,
                        "shipped_kg": _f(shipped.get(code)), "received_kg": _f(r), "accepted_kg": _f(a)})

    def total(name: str) -> float:
        return kg(sum(i[name] for i in by_code))

    treatment = {f"{t}_kg": 0.0 for t in TREATMENTS}
    by_method: dict[str, float] = {}
    carbon_processed = carbon_consumed = 0.0
    for method_code, carbon_accepted, accepted, consumed in processed_rows:
        treatment[f"{_treatment(session, method_code)}_kg"] += float(accepted or 0)
        by_method[method_code] = by_method.get(method_code, 0.0) + float(accepted or 0)
        carbon_processed += float(carbon_accepted or 0)
        carbon_consumed += float(consumed or 0)
    treatment = {k: kg(v) for k, v in treatment.items()}
    processed = kg(sum(treatment.values()))
    landfilled = treatment["landfilled_kg"]
    share = _share(landfilled, processed)

    previous, base = period.previous(), period.same_period_in(base_year)
    compared = landfill_by_period(session, scope, [previous, base])

    def trend(row: dict[str, Any]) -> dict[str, Any]:
        change = (round(share - row["landfill_share"], 6)
                  if share is not None and row["landfill_share"] is not None else None)
        return {**row, "change_share": change,
                "direction": None if change is None else ("down" if change < 0 else "up" if change > 0 else "flat")}

    fills = _fills(session, scope, period)
    manifests = _manifest_counts(session, scope, period, now)
    boxes = _boxes(session, scope, period, now)

    generated = total("generated_kg")
    va = _value_added(session, scope, [period, last_year])

    def intensity(gen_kg: float, figure: ValueAddedFigure | None) -> float | None:
        return round(gen_kg / 1000 / figure.value_10k_yuan, 8) if figure and figure.value_10k_yuan else None

    now_intensity = intensity(generated, va.get(period.label))
    ly_intensity = intensity(generated_last_year, va.get(last_year.label))
    growth = (round((now_intensity - ly_intensity) / ly_intensity, 6)
              if now_intensity is not None and ly_intensity else None)
    current = va.get(period.label)
    carbon_codes = rules(session).waste_carbon_codes
    carbon_generated = kg(sum(i["generated_kg"] for i in by_code if i["waste_code"] in carbon_codes))
    stock_change = kg(generated - total("shipped_kg") + total("returned_kg"))

    return {
        "scope": scope.as_dict(),
        "period": {"label": period.label, "kind": period.kind, "start": period.start_utc, "end": period.end_utc,
                   "complete": period.end_utc <= now},
        "base_year": base_year,
        "generated_kg": generated, "generated_t": round(generated / 1000, 6),
        "into_storage_kg": total("into_storage_kg"), "returned_kg": total("returned_kg"),
        "in_storage_end_kg": total("in_storage_end_kg"), "shipped_kg": total("shipped_kg"),
        "received_kg": total("received_kg"), "accepted_kg": total("accepted_kg"),
        "by_waste_code": by_code,
        "processed_kg": processed, "landfilled_kg": landfilled, "landfill_share": share,
        "treatment": {**treatment, "processed_kg": processed},
        "by_method": [{"method_code": code, "treatment": _treatment(session, code), "quantity_kg": kg(q)}
                      for code, q in sorted(by_method.items())],
        "landfill_trend": {"previous": trend(compared[0]), "base": trend(compared[1])},
        "regeneration": {
            "waste_carbon_processed_kg": kg(carbon_processed), "waste_carbon_regenerated_kg": kg(carbon_consumed),
            "regeneration_rate_share": _share(kg(carbon_consumed), kg(carbon_processed)),
            **{k: fills[k] for k in ("fills_count", "fills_kg", "regenerated_fills_count", "regenerated_fills_kg",
                                     "regenerated_fills_count_share", "regenerated_fills_kg_share")},
        },
        "manifests": manifests,
        "boxes": boxes,
        "replacements": {k: fills[k] for k in ("replacement_count", "on_time_replacement_count",
                                               "late_replacement_count", "on_time_replacement_share")},
        "intensity": {
            "value_added_10k_yuan": current.value_10k_yuan if current else None,
            "value_added_source": current.source if current else None,
            "generated_t": round(generated / 1000, 6),
            "generation_intensity_t_per_10k_yuan": now_intensity,
            "previous_year_period": last_year.label,
            "previous_year_generated_t": round(generated_last_year / 1000, 6),
            "previous_year_value_added_10k_yuan": (va[last_year.label].value_10k_yuan
                                                   if last_year.label in va else None),
            "previous_year_intensity_t_per_10k_yuan": ly_intensity,
            "yoy_growth_share": growth,
        },
        "mass_balance": _mass_balance(fills, generated, carbon_generated, total("shipped_kg"),
                                      _shipped_and_received(session, scope, period), total("returned_kg"),
                                      stock_change),
        "definitions": DEFINITIONS,
    }


def metrics(session: Session, actor: Principal, scope: Scope, period: Period | str, base_year: int | None = None,
            now: datetime | None = None) -> dict[str, Any]:
    """The statistics of ``scope`` in ``period`` for ``actor`` (403 outside its jurisdiction,
    422 for a malformed or future period)."""
    now = now or utcnow()
    authorise(actor, scope)
    period = parse_period(period)
    check_not_future(period, now)
    return compute(session, scope, period, base_year, now)


def county_metrics(session: Session, county_code: str, period: Period | str) -> dict:
    """For internal callers (the county synergy index): no actor. Includes ``landfill_share``
    (0–1, None when nothing was processed), ``processed_kg`` and ``landfilled_kg`` at the top."""
    scope = resolve_scope(session, "county", county_code)
    return compute(session, scope, parse_period(period))


def county_landfill(session: Session, county_code: str, period: Period | str) -> dict[str, Any]:
    """For internal callers (the county synergy index, nine counties and two periods per request):
    a county's processed and landfilled kg and landfill share in one query, without the rest of
    :func:`compute`. An unknown county is :class:`NotFound`."""
    scope = resolve_scope(session, "county", county_code)
    return landfill_by_period(session, scope, [parse_period(period)])[0]


# ---------------------------------------------------------------- value added (imported)

def _can_import(actor: Principal, scope: Scope) -> bool:
    if actor.is_operator:
        return True
    org = actor.organization
    if org is None or actor.is_device or not org.has_role("regulator"):
        return False
    return org.county_code is None or (scope.kind != "city" and scope.county_code == org.county_code)


def import_value_added(session: Session, actor: Principal, items: list[dict[str, Any]],
                       now: datetime | None = None) -> dict[str, Any]:
    """Upsert value-added figures. All or nothing: any bad item → 422 with its index and fields."""
    now = now or utcnow()
    if not (actor.is_operator or (actor.organization and not actor.is_device
                                  and actor.organization.has_role("regulator"))):
        raise Forbidden("只有平台运维和市、区县生态环境部门可以导入工业增加值 (operators and regulators only)")
    errors: dict[str, dict[str, list[str]]] = {}
    resolved: list[tuple[Scope, Period, dict]] = []
    seen: dict[tuple[str, str], int] = {}
    for i, item in enumerate(items):
        problems: dict[str, list[str]] = {}
        kind = item.get("scope")
        scope: Scope | None = None
        try:
            if kind == "park":
                scope = resolve_scope(session, "park", item.get("park_id"))
            elif kind == "county":
                scope = resolve_scope(session, "county", item.get("county_code"))
            elif kind == "city":
                scope = CITY
            else:
                problems["scope"] = [f"one of {', '.join(VALUE_ADDED_SCOPES)}"]
        except NotFound as exc:
            problems["park_id" if kind == "park" else "county_code"] = [exc.detail]
        period = None
        try:
            period = parse_period(item.get("period"))
            check_not_future(period, now)
        except InvalidInput as exc:
            problems.update(exc.errors)
        value = item.get("value_added_10k_yuan")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            problems["value_added_10k_yuan"] = ["a number greater than 0 (10⁴ yuan)"]
        if not (item.get("source_department") or "").strip():
            problems["source_department"] = ["the department the figure comes from is required"]
        if scope is not None and period is not None and not problems:
            key = (scope.key, period.label)
            if key in seen:
                problems["period"] = [f"item {seen[key]} gives the same scope and period"]
            seen[key] = i
        if problems:
            errors[str(i)] = problems
        elif scope is not None and period is not None:
            if not _can_import(actor, scope):
                raise Forbidden(f"第 {i} 项超出您的辖区 (item {i}: {scope.name} is outside your jurisdiction)")
            resolved.append((scope, period, item))
    if errors:
        raise InvalidInput("Some value-added items are invalid; nothing was stored.", errors=errors)
    existing = {(r.scope_key, r.period): r for r in session.scalars(select(ValueAdded).where(or_(*[
        and_(ValueAdded.scope_key == s.key, ValueAdded.period == p.label) for s, p, _ in resolved])))} if resolved else {}
    created = updated = 0
    stored = []
    for scope, period, item in resolved:
        row = existing.get((scope.key, period.label))
        if row is None:
            row = ValueAdded(scope=scope.kind, scope_key=scope.key, park_id=scope.park_id,
                             county_code=scope.county_code if scope.kind == "county" else None, period=period.label)
            session.add(row)
            created += 1
        else:
            updated += 1
        row.value_added_10k_yuan = float(item["value_added_10k_yuan"])
        row.source_department = item["source_department"].strip()
        row.imported_by_user_id = actor.user.id if actor.user else None
        row.imported_at = now
        stored.append(row)
    try:
        session.flush()
    except Exception as exc:  # a concurrent import of the same scope and period won the race
        from sqlalchemy.exc import IntegrityError

        if isinstance(exc, IntegrityError):
            raise Conflict("同一范围和期间的工业增加值正被同时导入，请重试 (a concurrent import; retry)") from exc
        raise
    return {"created": created, "updated": updated, "items": stored}


def value_added_scope(actor: Principal):
    """The value-added rows ``actor`` may list: those of the scopes it may read."""
    from sqlalchemy import false

    if actor.is_operator:
        return true()
    org = actor.organization
    if org is None or actor.is_device:
        return false()
    conditions = []
    if org.has_role("regulator"):
        if org.county_code is None:
            return true()
        conditions.append(ValueAdded.county_code == org.county_code)
        conditions.append(ValueAdded.park_id.in_(select(Park.id).where(Park.county_code == org.county_code)))
    if org.has_role("park_admin") and org.park_id is not None:
        conditions.append(ValueAdded.park_id == org.park_id)
    return or_(*conditions) if conditions else false()


def list_value_added(session: Session, actor: Principal, scope: str | None = None, period: str | None = None):
    query = select(ValueAdded).where(value_added_scope(actor))
    if scope:
        query = query.where(ValueAdded.scope == scope)
    if period:
        query = query.where(ValueAdded.period == parse_period(period).label)
    return query.order_by(ValueAdded.period.desc(), ValueAdded.scope_key)
