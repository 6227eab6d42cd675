"""The mass balance of a scope and period: carbon replaced vs weighed, generated vs shipped, shipped vs received."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.ledger.services import kg


def _n(value: Decimal) -> str:
    """A kg figure for the explanations: grams at most, no exponent, no trailing zeros."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _gap(code: str, gap_kg: Decimal, zh: str, en: str, **numbers: Decimal) -> dict[str, Any]:
    return {"code": code, "gap_kg": kg(gap_kg), "zh": zh, "en": en, "numbers": numbers}


def mass_balance(
    fills: dict,
    generated: Decimal,
    carbon_generated: Decimal,
    shipped: Decimal,
    shipped_received: tuple[Decimal, Decimal],
    returned: Decimal,
    stock_change: Decimal,
) -> dict[str, Any]:
    replaced, weighed = fills["replaced_carbon_kg"], fills["waste_carbon_weighed_kg"]
    on_manifests, weighed_in = shipped_received
    gaps = [
        _gap(
            "replaced_vs_weighed",
            replaced - weighed,
            f"本期更换换下活性炭（装填量）{_n(replaced)} kg，称重废炭 {_n(weighed)} kg，差 {_n(replaced - weighed)} kg"
            "（为正表示废炭少于装入的炭，去向需核实）",
            f"Replacements removed carbon filled at {_n(replaced)} kg and {_n(weighed)} kg of waste carbon was weighed: "
            f"gap {_n(replaced - weighed)} kg (positive: less waste than carbon, to be checked)",
            replaced_carbon_kg=replaced,
            waste_carbon_weighed_kg=weighed,
        ),
        _gap(
            "generated_vs_shipped",
            generated - shipped,
            f"本期产生 {_n(generated)} kg，运出 {_n(shipped)} kg，差 {_n(generated - shipped)} kg；"
            f"退回 {_n(returned)} kg，期内库存变化 {_n(stock_change)} kg（= 产生 − 运出 + 退回）",
            f"Generated {_n(generated)} kg, shipped {_n(shipped)} kg: gap {_n(generated - shipped)} kg; returned "
            f"{_n(returned)} kg; stock changed by {_n(stock_change)} kg (= generated − shipped + returned)",
            generated_kg=generated,
            shipped_kg=shipped,
            returned_kg=returned,
            stock_change_kg=stock_change,
        ),
        _gap(
            "shipped_vs_received",
            on_manifests - weighed_in,
            f"本期运出且已接收的联单运出 {_n(on_manifests)} kg，接受人称重 {_n(weighed_in)} kg，差 "
            f"{_n(on_manifests - weighed_in)} kg（运输途中的差异）",
            f"Manifests picked up in the period and received: {_n(on_manifests)} kg shipped, {_n(weighed_in)} kg "
            f"weighed by the receivers: gap {_n(on_manifests - weighed_in)} kg (lost or gained in transit)",
            shipped_kg=on_manifests,
            received_kg=weighed_in,
        ),
    ]
    return {
        "filled_kg": fills["fills_kg"],
        "replaced_carbon_kg": replaced,
        "waste_carbon_weighed_kg": weighed,
        "waste_carbon_generated_kg": carbon_generated,
        "generated_kg": generated,
        "shipped_kg": shipped,
        "received_kg": weighed_in,
        "gaps": gaps,
    }
