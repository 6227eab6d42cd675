"""Licences of the parties: hazardous-waste operating licences and road transport permits."""

from __future__ import annotations

from datetime import date
from typing import Any

from app.accounts.models import Organization
from app.ledger.catalogue import category_of


def licence_covers(licence: dict[str, Any], waste_code: str, today: date) -> bool:
    """A hazardous-waste operating licence covers a code when it lists the code or its category
    (HW49); an empty list covers every waste. Expired licences cover nothing."""
    if (licence.get("kind") or "hw_operation") != "hw_operation":
        return False
    valid_until = licence.get("valid_until")
    if valid_until:
        try:
            until = valid_until if isinstance(valid_until, date) else date.fromisoformat(str(valid_until))
        except ValueError:
            return False
        if until < today:
            return False
    codes = [str(c).strip().upper() for c in (licence.get("waste_codes") or [])]
    return not codes or waste_code in codes or category_of(waste_code) in codes


def _licence_valid_on(licence: dict[str, Any], today: date) -> bool:
    valid_until = licence.get("valid_until")
    if not valid_until:
        return True
    try:
        until = valid_until if isinstance(valid_until, date) else date.fromisoformat(str(valid_until))
    except ValueError:
        return False
    return until >= today


def transport_permit(org: Organization, today: date) -> dict[str, Any] | None:
    """A carrier's valid road transport permit for dangerous goods (道路危险货物运输许可):
    the carrier refuses to carry without a manifest, and may not carry without a permit."""
    return next(
        (lic for lic in (org.licences or []) if lic.get("kind") == "transport" and _licence_valid_on(lic, today)), None
    )


def covering_licence(org: Organization, waste_code: str, today: date) -> dict[str, Any] | None:
    return next((lic for lic in (org.licences or []) if licence_covers(lic, waste_code, today)), None)
