"""Fixed choices of the statistics (colours, treatments, the base year) and the definitions every response carries."""

from __future__ import annotations

from app.boxes.colour import SPENT_CARBON_RULES
from app.boxes.models import COLOURS  # noqa: F401  (re-exported: the one definition, in severity order)
from app.ledger.models import RECEIVED_STATES  # noqa: F401  (re-exported)

DEFAULT_BASE_YEAR = 2024  # overridden by the STATISTICS_BASE_YEAR setting
TREATMENTS = ("utilised", "incinerated", "cement_kiln", "landfilled", "other")
LATE_REPLACEMENT_RULES = SPENT_CARBON_RULES

DEFINITIONS = {
    "scope": "enterprises whose park/county is the scope's (the city: all); their ledger, manifests and boxes",
    "generated_kg": "ledger records of stage generation (产生) dated in the period",
    "into_storage_kg": "ledger records of stage storage (入库) dated in the period",
    "in_storage_end_kg": "generated + returned − out of storage up to the end of the period",
    "shipped_kg": "quantity on manifests picked up in the period (rejected ones included)",
    "received_kg": "weighed quantity of manifests received in the period",
    "processed_kg": "accepted quantity of manifest lines processed in the period (any method code)",
    "utilised_kg": "processed with a utilisation code (R1–R9, R15, C2, C3)",
    "incinerated_kg": "processed with D10",
    "cement_kiln_kg": "processed with C1",
    "landfilled_kg": "processed with D1 (only D1 counts as landfill)",
    "other_kg": "processed with D9, D16",
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
