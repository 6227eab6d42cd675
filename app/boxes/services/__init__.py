"""Boxes: registration, fills and replacements, colour evaluation and history, visibility.

One module per concern; every name callers use (``box_services.<name>``) is re-exported here.
"""

from __future__ import annotations

from app.boxes.models import Box, BoxEvent, ColourChange, Fill  # callers read the models here too
from app.boxes.services.access import (
    box_scope,
    can_see,
    can_service,
    find_box_public,
    get_box,
    list_boxes,
    require_visible_enterprise,
    require_visible_park,
)
from app.boxes.services.colours import (
    _REASON_KEYS,
    _UPDATE_BOX,
    MAX_REPLAY_MOMENTS,
    REPLAY_KEY,
    BoxView,
    _evaluate_boxes,
    _is_modified,
    _rules,
    days_in_colour,
    evaluate_boxes,
    history,
    rebuild_history,
    refresh_colours,
    refresh_due,
    refresh_due_chunk,
    view_box,
    view_boxes,
)
from app.boxes.services.fills import record_fill
from app.boxes.services.latest import last_replacement, latest_fill, latest_fills
from app.boxes.services.registry import _positive, record_scan_problem, register_box, reprint_label, set_status, touch

__all__ = [
    "MAX_REPLAY_MOMENTS",
    "REPLAY_KEY",
    "_REASON_KEYS",
    "_UPDATE_BOX",
    "Box",
    "BoxEvent",
    "BoxView",
    "ColourChange",
    "Fill",
    "_evaluate_boxes",
    "_is_modified",
    "_positive",
    "_rules",
    "box_scope",
    "can_see",
    "can_service",
    "days_in_colour",
    "evaluate_boxes",
    "find_box_public",
    "get_box",
    "history",
    "last_replacement",
    "latest_fill",
    "latest_fills",
    "list_boxes",
    "rebuild_history",
    "record_fill",
    "record_scan_problem",
    "refresh_colours",
    "refresh_due",
    "refresh_due_chunk",
    "register_box",
    "reprint_label",
    "require_visible_enterprise",
    "require_visible_park",
    "set_status",
    "touch",
    "view_box",
    "view_boxes",
]
