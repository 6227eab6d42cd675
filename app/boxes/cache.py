"""A per-process read cache for what a box shows (API JSON, scan page HTML).

Reading a box means evaluating its colour from several tables; it is also the most frequent
request (every label scan). An entry is reused while (1) the box's ``revision`` in the database
is unchanged — every write that changes what a box shows bumps it, in any worker — and (2) time
alone cannot have changed it: entries expire at the box's next colour check, and after
``MAX_AGE`` at the latest, which bounds how stale slowly drifting figures (saturation) get.
One indexed query per hit checks the revision, so workers never serve each other's stale data.
Entries hold plain values (JSON, HTML) and are keyed by the database URL and the ``scope`` the
caller passes (its rules folder): two apps in one process never see each other's entries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from app.boxes.models import Box
from app.common.fastread import reader

MAX_AGE = timedelta(seconds=30)
MAX_ENTRIES = 20_000


@dataclass(frozen=True)
class BoxFacts:
    """What the visibility rule needs, so a hit never loads the box."""

    box_id: int
    code: str
    enterprise_id: int
    service_org_id: int | None
    county_code: str | None
    park_id: int | None
    label_version: int


@dataclass(frozen=True)
class Entry:
    facts: BoxFacts
    revision: int
    valid_until: datetime
    value: Any


def box_revision(engine: Engine, box_id: int) -> int | None:
    try:
        row = reader.fetchone(engine, "SELECT revision FROM boxes WHERE id = ?", (box_id,))
    except LookupError:
        return None
    return row[0] if row else None


class ReadCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[tuple, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def get(self, engine: Engine, key: tuple, code: str, now: datetime) -> Entry | None:
        entry = self._entries.get((str(engine.url), code, *key))
        if entry is None or now >= entry.valid_until:
            self.misses += 1
            return None
        revision = box_revision(engine, entry.facts.box_id)
        if revision != entry.revision:
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def put(
        self, engine: Engine, key: tuple, box: Box, value: Any, now: datetime, next_check_at: datetime | None
    ) -> None:
        until = now + MAX_AGE
        if next_check_at is not None and next_check_at < until:
            until = next_check_at
        facts = BoxFacts(
            box.id,
            box.code,
            box.enterprise_id,
            box.service_org_id,
            box.enterprise.county_code,
            box.enterprise.park_id,
            box.label_version,
        )
        with self._lock:
            full_key = (str(engine.url), box.code, *key)
            self._entries[full_key] = Entry(facts, box.revision, until, value)
            self._entries.move_to_end(full_key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


box_json_cache = ReadCache()
scan_page_cache = ReadCache()
