"""A per-process cache of what a box shows (API JSON, anonymous scan page HTML).

A read takes the box's stored evaluation in one statement (app.boxes.lean); what this cache
saves is building the JSON or rendering the page again, and it keeps the figures a box shows
steady between close reads. An entry is reused while (1) the box's ``revision``, read with the
box, is unchanged — every write that changes what a box shows bumps it, in any worker, so
workers never serve each other's stale data — and (2) time alone cannot have changed it: entries
expire at the box's next colour check, and after ``MAX_AGE`` at the latest, which bounds how
stale slowly drifting figures (the design saturation) get. Entries hold plain values (JSON,
HTML) and are keyed by the database URL and the ``scope`` the caller passes (its rules folder,
language, label state): two apps in one process never see each other's entries.
A cache shared by the workers (Redis) would not pay: scans are of random boxes, a miss costs one
rendering, and the lean read is needed anyway to know the revision.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from app.common.fastread import engine_key

MAX_AGE = timedelta(seconds=30)
MAX_ENTRIES = 20_000


@dataclass(frozen=True)
class Entry:
    revision: int
    valid_until: datetime
    value: Any


class ReadCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[tuple, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def get(self, engine: Engine, key: tuple, code: str, revision: int, now: datetime) -> Entry | None:
        """The entry for box ``code`` if it was made at ``revision`` (the box's, as just read)
        and time alone cannot have changed it since."""
        entry = self._entries.get((engine_key(engine), code, *key))
        if entry is None or now >= entry.valid_until or entry.revision != revision:
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def put(
        self,
        engine: Engine,
        key: tuple,
        code: str,
        revision: int,
        value: Any,
        now: datetime,
        next_check_at: datetime | None,
    ) -> Entry:
        until = now + MAX_AGE
        if next_check_at is not None and next_check_at < until:
            until = next_check_at
        entry = Entry(revision, until, value)
        with self._lock:
            full_key = (engine_key(engine), code, *key)
            self._entries[full_key] = entry
            self._entries.move_to_end(full_key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


box_json_cache = ReadCache()
scan_page_cache = ReadCache()
