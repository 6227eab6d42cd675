"""Ledger (台账), stock and transfer manifests (联单).

No Flask here: callers pass the session, the acting :class:`Principal` and ``now``.

Stock moves with the manifest (product.md): submit reserves, pickup ships (out of storage and
sent out), a refusal returns the refused quantity into storage, cancel releases the reservation.
Every move happens under the lock of the (enterprise, waste code) stock row, so stock never goes
negative and two manifests cannot both ship the same waste.

One module per concern: :mod:`.rules_access` (rules, methods, calendar, catalogue, kg, EPS),
:mod:`.stock` (stock rows, batches, stock moves), :mod:`.records` (ledger records and reads),
:mod:`.hooks` (the boxes' fill validator and hook, registered when this package is imported),
:mod:`.numbering`, :mod:`.licences`, :mod:`.manifests` (visibility, listing, creation),
:mod:`.steps` (the manifest lifecycle). The names used
outside the package are re-exported here.
"""

from __future__ import annotations

from app.common.timeutil import SHANGHAI
from app.ledger.services.hooks import on_fill, validate_replacement  # registers the boxes' fill hooks
from app.ledger.services.licences import covering_licence, licence_covers, transport_permit
from app.ledger.services.manifests import (
    FLAGS,
    can_read,
    create_manifest,
    find_manifest_public,
    get_manifest,
    list_manifests,
    manifest_scope,
)
from app.ledger.services.numbering import NUMBER_RE, PROVINCES, issue_number, note_external_number, number_problem
from app.ledger.services.records import (
    ledger_query,
    management_class,
    record_by_hand,
    record_generation,
    stock_summary,
    visible_enterprise,
)
from app.ledger.services.rules_access import EPS, calendar, catalogue_entry, kg, methods, rules
from app.ledger.services.steps import (
    ACTION_FROM,
    ACTIONS,
    PARTY_ZH,
    _receipt_due,
    act,
    cancel,
    party_of,
    pickup,
    process,
    receive,
    reject,
    submit,
)
from app.ledger.services.stock import lock_stock, refresh_box_colours

__all__ = [
    "ACTIONS",
    "ACTION_FROM",
    "EPS",
    "FLAGS",
    "NUMBER_RE",
    "PARTY_ZH",
    "PROVINCES",
    "SHANGHAI",
    "_receipt_due",
    "act",
    "calendar",
    "can_read",
    "cancel",
    "catalogue_entry",
    "covering_licence",
    "create_manifest",
    "find_manifest_public",
    "get_manifest",
    "issue_number",
    "kg",
    "ledger_query",
    "licence_covers",
    "list_manifests",
    "lock_stock",
    "management_class",
    "manifest_scope",
    "methods",
    "note_external_number",
    "number_problem",
    "on_fill",
    "party_of",
    "pickup",
    "process",
    "receive",
    "record_by_hand",
    "record_generation",
    "refresh_box_colours",
    "reject",
    "rules",
    "stock_summary",
    "submit",
    "transport_permit",
    "validate_replacement",
    "visible_enterprise",
]
