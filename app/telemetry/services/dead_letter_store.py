"""Dead letters: MQTT messages (and other input) that could not be ingested, kept for operators."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.common.errors import Forbidden
from app.common.timeutil import utcnow
from app.telemetry.models import DeadLetter

_TOKEN = re.compile(r"txd_[A-Za-z0-9_\-]+")
PAYLOAD_KEEP = 64 * 1024


def redact(text: str) -> str:
    """Device tokens never reach the operators' list."""
    return _TOKEN.sub("txd_[redacted]", text)


def record_dead_letter(
    session: Session,
    *,
    topic: str,
    payload: bytes,
    reason: str,
    detail: str = "",
    errors: Iterable[dict[str, Any]] = (),
    now: datetime | None = None,
    source: str = "mqtt",
) -> DeadLetter:
    # PostgreSQL text cannot hold NUL: keep it visible as an escape, like other undecodable bytes.
    text = payload.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")
    letter = DeadLetter(
        received_at=now or utcnow(),
        source=source,
        topic=topic[:255],
        reason=reason,
        detail=redact(detail)[:2000],
        errors=list(errors),
        payload=redact(text[:PAYLOAD_KEEP]),
        payload_bytes=len(payload),
    )
    session.add(letter)
    session.flush()
    return letter


def dead_letters(actor: Principal, reason: str | None = None):
    if not actor.is_operator:
        raise Forbidden("需要平台运维权限 (platform operators only)")
    query = select(DeadLetter).order_by(DeadLetter.received_at.desc(), DeadLetter.id.desc())
    return query.where(DeadLetter.reason == reason) if reason else query
