"""The versions a manifest or ledger record went through: each approved revision keeps the content
it replaced (its ``before``); the last version is the current row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.common.errors import NotFound
from app.ledger.revision_models import Revision, RevisionState
from app.ledger.services.manifests import get_manifest
from app.ledger.services.revision_apply import manifest_content, record_content
from app.ledger.services.revisions import get_record


def _versions(revisions: list[Revision], current: dict[str, Any], current_version: int) -> list[dict[str, Any]]:
    out = [
        {
            "version": r.version - 1,
            "current": False,
            "replaced_at": r.decided_at,
            "replaced_by_revision": r.id,
            "content": r.before,
        }
        for r in revisions
        if r.version is not None
    ]
    out.append(
        {
            "version": current_version,
            "current": True,
            "replaced_at": None,
            "replaced_by_revision": None,
            "content": current,
        }
    )
    return out


def _approved(session: Session, **target: int) -> list[Revision]:
    key, value = next(iter(target.items()))
    return list(
        session.scalars(
            select(Revision)
            .where(getattr(Revision, key) == value, Revision.state == RevisionState.APPROVED)
            .order_by(Revision.version)
        )
    )


def manifest_versions(session: Session, actor: Principal, number: str) -> list[dict[str, Any]]:
    manifest = get_manifest(session, actor, number)
    return _versions(_approved(session, manifest_id=manifest.id), manifest_content(manifest), manifest.version or 1)


def record_versions(session: Session, actor: Principal, record_id: int) -> list[dict[str, Any]]:
    record = get_record(session, actor, record_id)
    return _versions(_approved(session, record_id=record.id), record_content(record), record.version or 1)


def one_version(versions: list[dict[str, Any]], version: int) -> dict[str, Any]:
    found = next((v for v in versions if v["version"] == version), None)
    if found is None:
        raise NotFound(f"版本 {version} 不存在 (version {version} not found; versions 1–{versions[-1]['version']})")
    return found
