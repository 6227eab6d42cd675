"""Unusual but possible values need an explicit confirmation (issue 11).

``app/data/plausibility.yaml`` ``unusual:`` gives the thresholds (with their sources). The services
collect a warning per field with :class:`Warnings`; unless the request confirms them
(``"confirm_unusual": true`` in the API, the checkbox 我已核实以上数值 on the page), they answer
422 problem+json ``code: confirmation_required`` listing each warning per field (``errors`` and
``warnings``). A confirmed value is stored with ``confirmed_unusual`` set, which the audit trail
records with the row. Impossible values are refused before, by the hard limits of the same file.
No Flask here: the services call it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.common import limits as plausible_limits
from app.common.errors import InvalidInput
from app.common.wiring import wiring_of

CONFIRM_FIELD = "confirm_unusual"


class ConfirmationRequired(InvalidInput):
    """Values that are possible but unusual: send again with ``confirm_unusual: true``."""

    title = "Confirmation required"


def _f(value: float) -> str:
    return f"{float(value):g}"


class Warnings:
    """The unusual values of one request, per field."""

    def __init__(self, session: Session) -> None:
        limits = plausible_limits.load(wiring_of(session).rules_dir)
        self.rules: dict[str, Any] = limits.unusual or {}
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, []).append(message)

    # The checks the services share.
    def iodine(self, field: str, value: Any) -> None:
        rule = self.rules.get("iodine_mg_g")
        if rule and value is not None and not rule["min"] <= float(value) <= rule["max"]:
            self.add(field, f"unusual: outside the usual {_f(rule['min'])}–{_f(rule['max'])} mg/g")

    def fill_vs_design(self, field: str, value: Any, design_kg: Any) -> None:
        rule = self.rules.get("fill_vs_design")
        if rule and value is not None and design_kg and float(value) > float(design_kg) * rule["max_ratio"]:
            self.add(
                field,
                f"unusual: more than {_f(rule['max_ratio'])} × the box's design fill ({_f(design_kg)} kg)",
            )

    def removed_vs_held(self, field: str, value: Any, held_kg: Any) -> None:
        rule = self.rules.get("removed_vs_held")
        if not rule or value is None or held_kg is None:
            return
        most = float(held_kg) * (1 + rule["adsorbed_share"]) * rule["max_ratio"]
        if float(value) > most:
            share = round(rule["adsorbed_share"] * 100)
            self.add(
                field,
                f"unusual: more than the box held ({_f(held_kg)} kg of carbon + {share}% adsorbed = {_f(round(most, 1))} kg)",
            )

    def received_vs_shipped(self, field: str, received: Any, shipped: Any) -> None:
        rule = self.rules.get("received_vs_shipped")
        if rule and received is not None and shipped and float(received) > float(shipped) * rule["max_ratio"]:
            self.add(field, f"unusual: more than {_f(rule['max_ratio'])} × the {_f(shipped)} kg shipped")

    def waste_quantity(self, field: str, value: Any) -> None:
        rule = self.rules.get("waste_record_kg")
        if rule and value is not None and float(value) > rule["max"]:
            self.add(field, f"unusual: more than {_f(rule['max'])} kg in one record")

    def settle(self, data: dict[str, Any]) -> bool:
        """Raise :class:`ConfirmationRequired` for unconfirmed warnings; True when confirmed ones exist."""
        if not self.by_field:
            return False
        if data.get(CONFIRM_FIELD) is True:
            return True
        raise ConfirmationRequired(
            "Some values are unusual: check them and send again with confirm_unusual: true.",
            errors=self.by_field,
            code="confirmation_required",
            warnings=self.by_field,
        )


def confirmed_lines(warnings: Warnings, confirmed: bool) -> set[int]:
    """The indexes of the ``lines.N.…`` fields whose unusual values were confirmed."""
    if not confirmed:
        return set()
    return {int(name.split(".")[1]) for name in warnings.by_field if name.startswith("lines.")}
