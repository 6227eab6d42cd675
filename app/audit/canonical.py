"""Canonical JSON of row images and entries (what the chain hashes and verify compares)."""

from __future__ import annotations

import enum
import hashlib
import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

REDACTED = "[redacted]"
# Never in the trail: secrets and their hashes.
SECRET_COLUMNS = frozenset({"password_hash", "token_hash", "code_hash", "secret", "token", "password"})


def plain(value: Any) -> Any:
    """A JSON value for a column value: Decimals and times as strings, enums as their value."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    return hashlib.sha256(dumps(value).encode()).hexdigest()


HASHED_FIELDS = (
    "seq",
    "recorded_at",
    "interface",
    "user_id",
    "org_id",
    "actor",
    "table_name",
    "row_key",
    "subject",
    "action",
    "before",
    "after",
    "prev_hash",
)


def entry_hash(fields: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of an entry's fields, its predecessor's hash included."""
    return digest({k: fields[k] for k in HASHED_FIELDS})


GENESIS = "0" * 64
