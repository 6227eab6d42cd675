"""Keeping the statistics' roll-ups current without the writers knowing: session events.

The colour history is written in several places (registration, ``refresh_colours``,
``rebuild_history`` when late events rewrite it), ledger records, manifests and fills in many
more (steps, revisions re-posting, regeneration). None of them calls the statistics. Instead
:func:`install` (called by :func:`app.create_app`, like the audit trail's recorder) listens on the
app's session class:

* ``after_flush`` notes what each flush inserted, changed or deleted that a roll-up sums: the
  (enterprise, month) of ledger records and manifests, the old and the new values both (a
  revision can move a manifest to another month or enterprise), the manifests of changed lines,
  the (box, moment) of fills and colour changes;
* ``before_commit`` rewrites the affected roll-up rows from the raw records
  (:func:`app.statistics.services.rollups.apply_pending`) in the same transaction.

``before_commit`` is the ORM's own transaction boundary: every commit passes it, the request
boundary's, the CLI's, ``commit_read_effects``, the MQTT subscriber's per batch and the demo
loader's, so no worker can commit events without their roll-ups. A rolled-back transaction drops
what it noted. Bulk UPDATE/DELETE statements are not seen by ``after_flush``: the one on these
tables (steps.py sets ``LedgerRecord.method_code``) changes nothing a roll-up sums.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, attributes, object_session

from app.boxes.models import ColourChange, Fill
from app.ledger.models import LedgerRecord, Manifest, ManifestLine
from app.statistics.services.rollups import PENDING_KEY, apply_pending, pending


def _values(obj: Any, key: str) -> list[Any]:
    """The attribute's current value and the value it had before this flush."""
    history = attributes.get_history(obj, key, passive=attributes.PASSIVE_NO_INITIALIZE)
    values = [*history.added, *history.unchanged, *history.deleted]
    if not values:
        current = attributes.instance_state(obj).dict.get(key)
        values = [current]
    return [v for v in values if v is not None]


def _note(session: Session, obj: Any) -> None:
    staged = pending(session)
    if isinstance(obj, ColourChange):
        for box_id in _values(obj, "box_id"):
            for at in _values(obj, "changed_at"):
                staged.at(staged.boxes, box_id, at)
    elif isinstance(obj, Fill):
        for box_id in _values(obj, "box_id"):
            for at in _values(obj, "filled_at"):
                staged.at(staged.fills, box_id, at)
    elif isinstance(obj, LedgerRecord):
        for enterprise_id in _values(obj, "enterprise_id"):
            for at in _values(obj, "occurred_at"):
                staged.month(enterprise_id, at)
    elif isinstance(obj, Manifest):
        for consignor in _values(obj, "consignor_id"):
            for key in ("picked_up_at", "received_at", "processed_at"):
                for at in _values(obj, key):
                    staged.month(consignor, at)
        if obj.id is not None:
            staged.manifests.add(obj.id)
    elif isinstance(obj, ManifestLine):
        staged.manifests.update(_values(obj, "manifest_id"))


def _after_flush(session: Session, _flush_context) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        _note(session, obj)


def _after_delete(_mapper, _connection, target) -> None:
    """Cascaded and orphan deletes (``session.deleted`` misses orphans)."""
    session = object_session(target)
    if session is not None:
        _note(session, target)


def _before_commit(session: Session) -> None:
    if session.info.get(PENDING_KEY) or session.new or session.dirty or session.deleted:
        session.flush()
        apply_pending(session)


def _forget(session: Session, previous_transaction) -> None:
    # Only when the whole transaction is gone: a savepoint rolled back keeps what was noted
    # before it (rewriting a roll-up row that did not change is harmless, missing one is not).
    if previous_transaction.parent is None:
        session.info.pop(PENDING_KEY, None)


def install(session_class) -> None:
    """Listen on the app's session class (idempotent: several apps in one process share it)."""
    for name, fn in (("after_flush", _after_flush), ("before_commit", _before_commit)):
        if not event.contains(session_class, name, fn):
            event.listen(session_class, name, fn)
    if not event.contains(session_class, "after_soft_rollback", _forget):
        event.listen(session_class, "after_soft_rollback", _forget)
    for model in (ColourChange, Fill, LedgerRecord, Manifest, ManifestLine):
        if not event.contains(model, "after_delete", _after_delete):
            event.listen(model, "after_delete", _after_delete)
