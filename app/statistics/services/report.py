"""Every metric of a scope and period as one document, for a reader (authorised) and for the county synergy index."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.common.periods import Period
from app.common.timeutil import utcnow
from app.ledger.catalogue import load_catalogue
from app.ledger.services import kg, rules
from app.ledger.services.rules_access import ZERO_KG
from app.statistics.services import figures
from app.statistics.services.balance import mass_balance
from app.statistics.services.definitions import DEFAULT_BASE_YEAR, DEFINITIONS, TREATMENTS
from app.statistics.services.periods import check_not_future, parse_period
from app.statistics.services.scopes import Scope, authorise, resolve_scope
from app.statistics.services.sql import as_kg, ratio, treatment_of
from app.statistics.services.value_added import ValueAddedFigure, value_added_figures


def compute(
    session: Session, scope: Scope, period: Period, base_year: int | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Every metric of ``scope`` in ``period`` (no authorisation: callers check it)."""
    now = now or utcnow()
    base_year = base_year or DEFAULT_BASE_YEAR
    last_year = period.same_period_in(period.year - 1)
    catalogue = load_catalogue().entries

    codes, generated_last_year = figures.ledger(session, scope, period, last_year)
    shipped, received, processed_rows = figures.manifest_lines(session, scope, period, now)
    for code in set(shipped) | set(received):
        codes.setdefault(
            code,
            {"generated_kg": ZERO_KG, "into_storage_kg": ZERO_KG, "returned_kg": ZERO_KG, "in_storage_end_kg": ZERO_KG},
        )
    by_code = []
    for code in sorted(codes):
        item = codes[code]
        r, a = received.get(code, (0, 0))
        entry = catalogue.get(code)
        by_code.append(
            {
                "waste_code": code,
                "waste_name": entry.description if entry else "",
                **item,
                "shipped_kg": as_kg(shipped.get(code)),
                "received_kg": as_kg(r),
                "accepted_kg": as_kg(a),
            }
        )

    def total(name: str) -> Decimal:
        return kg(sum((i[name] for i in by_code), ZERO_KG))

    treatment = {f"{t}_kg": ZERO_KG for t in TREATMENTS}
    by_method: dict[str, Decimal] = {}
    carbon_processed = carbon_consumed = ZERO_KG
    for method_code, carbon_accepted, accepted, consumed in processed_rows:
        treatment[f"{treatment_of(session, method_code)}_kg"] += as_kg(accepted)
        by_method[method_code] = by_method.get(method_code, ZERO_KG) + as_kg(accepted)
        carbon_processed += as_kg(carbon_accepted)
        carbon_consumed += as_kg(consumed)
    treatment = {k: kg(v) for k, v in treatment.items()}
    processed = kg(sum(treatment.values(), ZERO_KG))
    landfilled = treatment["landfilled_kg"]
    share = ratio(landfilled, processed)

    previous, base = period.previous(), period.same_period_in(base_year)
    compared = figures.landfill_by_period(session, scope, [previous, base])

    def trend(row: dict[str, Any]) -> dict[str, Any]:
        change = (
            round(share - row["landfill_share"], 6) if share is not None and row["landfill_share"] is not None else None
        )
        return {
            **row,
            "change_share": change,
            "direction": None if change is None else ("down" if change < 0 else "up" if change > 0 else "flat"),
        }

    fills = figures.fills(session, scope, period)
    manifests = figures.manifest_counts(session, scope, period, now)
    boxes = figures.boxes(session, scope, period, now)

    generated = total("generated_kg")
    va = value_added_figures(session, scope, [period, last_year])

    def intensity(gen_kg: Decimal, figure: ValueAddedFigure | None) -> float | None:
        # t per 10⁴ yuan: a ratio (value added is money, a float), computed from the exact sum.
        return round(float(gen_kg) / 1000 / figure.value_10k_yuan, 8) if figure and figure.value_10k_yuan else None

    now_intensity = intensity(generated, va.get(period.label))
    ly_intensity = intensity(generated_last_year, va.get(last_year.label))
    growth = (
        round((now_intensity - ly_intensity) / ly_intensity, 6) if now_intensity is not None and ly_intensity else None
    )
    current = va.get(period.label)
    carbon_codes = rules(session).waste_carbon_codes
    carbon_generated = kg(sum((i["generated_kg"] for i in by_code if i["waste_code"] in carbon_codes), ZERO_KG))
    stock_change = kg(generated - total("shipped_kg") + total("returned_kg"))

    return {
        "scope": scope.as_dict(),
        "period": {
            "label": period.label,
            "kind": period.kind,
            "start": period.start_utc,
            "end": period.end_utc,
            "complete": period.end_utc <= now,
        },
        "base_year": base_year,
        "generated_kg": generated,
        "generated_t": generated / 1000,
        "into_storage_kg": total("into_storage_kg"),
        "returned_kg": total("returned_kg"),
        "in_storage_end_kg": total("in_storage_end_kg"),
        "shipped_kg": total("shipped_kg"),
        "received_kg": total("received_kg"),
        "accepted_kg": total("accepted_kg"),
        "by_waste_code": by_code,
        "processed_kg": processed,
        "landfilled_kg": landfilled,
        "landfill_share": share,
        "treatment": {**treatment, "processed_kg": processed},
        "by_method": [
            {"method_code": code, "treatment": treatment_of(session, code), "quantity_kg": kg(q)}
            for code, q in sorted(by_method.items())
        ],
        "landfill_trend": {"previous": trend(compared[0]), "base": trend(compared[1])},
        "regeneration": {
            "waste_carbon_processed_kg": kg(carbon_processed),
            "waste_carbon_regenerated_kg": kg(carbon_consumed),
            "regeneration_rate_share": ratio(kg(carbon_consumed), kg(carbon_processed)),
            **{
                k: fills[k]
                for k in (
                    "fills_count",
                    "fills_kg",
                    "regenerated_fills_count",
                    "regenerated_fills_kg",
                    "regenerated_fills_count_share",
                    "regenerated_fills_kg_share",
                )
            },
        },
        "manifests": manifests,
        "boxes": boxes,
        "replacements": {
            k: fills[k]
            for k in (
                "replacement_count",
                "on_time_replacement_count",
                "late_replacement_count",
                "on_time_replacement_share",
            )
        },
        "intensity": {
            "value_added_10k_yuan": current.value_10k_yuan if current else None,
            "value_added_source": current.source if current else None,
            "generated_t": generated / 1000,
            "generation_intensity_t_per_10k_yuan": now_intensity,
            "previous_year_period": last_year.label,
            "previous_year_generated_t": generated_last_year / 1000,
            "previous_year_value_added_10k_yuan": (
                va[last_year.label].value_10k_yuan if last_year.label in va else None
            ),
            "previous_year_intensity_t_per_10k_yuan": ly_intensity,
            "yoy_growth_share": growth,
        },
        "mass_balance": mass_balance(
            fills,
            generated,
            carbon_generated,
            total("shipped_kg"),
            figures.shipped_and_received(session, scope, period),
            total("returned_kg"),
            stock_change,
        ),
        "definitions": DEFINITIONS,
    }


def metrics(
    session: Session,
    actor: Principal,
    scope: Scope,
    period: Period | str,
    base_year: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
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
    return figures.landfill_by_period(session, scope, [parse_period(period)])[0]
