"""Audit services: verify the chain and the tables against it, the chain head, an object's trail,
the rule files' entry. No Flask: session and actor are passed in.

A little over ~400 lines because the verification of the chain, of the rows and of the
signatures reports in one list (first finding named), and splitting it would split that report."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from app.audit import canonical, recorder
from app.audit.models import AuditEntry
from app.common.errors import Forbidden, InvalidInput, NotFound

CHUNK = 500


@dataclass(frozen=True)
class Finding:
    kind: str  # chain, row, signature
    message: str
    seq: int | None = None
    table: str | None = None
    key: str | None = None
    column: str | None = None
    expected: Any = None
    found: Any = None

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------- verify


def _stream(session: Session, upto: int | None = None) -> Iterator[Any]:
    """The trail by seq, CHUNK entries at a time, as plain rows (bounded memory)."""
    last = 0
    columns = AuditEntry.__table__.c
    while True:
        query = select(*columns).where(columns.seq > last).order_by(columns.seq).limit(CHUNK)
        if upto is not None:
            query = query.where(columns.seq <= upto)
        chunk = list(session.execute(query))
        yield from chunk
        if len(chunk) < CHUNK:
            return
        last = chunk[-1].seq


def _fields(entry) -> dict[str, Any]:
    return {k: getattr(entry, k) for k in canonical.HASHED_FIELDS}


def verify_chain(session: Session, digest: tuple[int, str] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    expected_seq, prev = 1, canonical.GENESIS
    upto = digest[0] if digest else None
    seen_digest = False
    for entry in _stream(session, upto):
        if entry.seq != expected_seq:
            findings.append(
                Finding(
                    "chain",
                    f"entry {expected_seq}: missing (next stored entry is {entry.seq}); entries were deleted",
                    seq=expected_seq,
                )
            )
        if entry.prev_hash != prev:
            findings.append(
                Finding(
                    "chain",
                    f"entry {entry.seq}: does not follow its predecessor "
                    "(prev_hash differs: entries deleted, inserted or reordered)",
                    seq=entry.seq,
                )
            )
        recomputed = canonical.entry_hash(_fields(entry))
        if recomputed != entry.hash:
            findings.append(
                Finding(
                    "chain",
                    f"entry {entry.seq}: its content no longer matches its hash "
                    f"({entry.table_name} {entry.row_key} {entry.action}: edited)",
                    seq=entry.seq,
                )
            )
        if digest and entry.seq == digest[0]:
            seen_digest = True
            if entry.hash != digest[1]:
                findings.append(
                    Finding(
                        "chain",
                        f"entry {entry.seq}: hash {entry.hash} is not the recorded digest {digest[1]}",
                        seq=entry.seq,
                    )
                )
        expected_seq, prev = entry.seq + 1, entry.hash
    if digest and not seen_digest:
        findings.append(Finding("chain", f"entry {digest[0]} of the recorded digest is missing", seq=digest[0]))
    return findings


def audited_tables():
    return [t for t in recorder._metadata().sorted_tables if recorder.audited(t)]


def _latest(session: Session, table_name: str, keys: list[str]) -> dict[str, Any]:
    latest: dict[str, Any] = {}
    query = (
        select(*AuditEntry.__table__.c)
        .where(
            AuditEntry.table_name == table_name,
            AuditEntry.row_key.in_(keys),
            AuditEntry.action.in_(recorder.ROW_ACTIONS),
        )
        .order_by(AuditEntry.seq)
    )
    for entry in session.execute(query):
        latest[entry.row_key] = entry
    return latest


def _compare(table_name: str, key: str, entry, found: dict[str, Any]) -> list[Finding]:
    if entry is None:
        return [
            Finding(
                "row",
                f"{table_name} {key}: row not in the audit trail (inserted behind the application's back)",
                table=table_name,
                key=key,
            )
        ]
    if entry.action == "delete":
        return [
            Finding(
                "row",
                f"{table_name} {key}: row exists, but entry {entry.seq} recorded its deletion",
                seq=entry.seq,
                table=table_name,
                key=key,
            )
        ]
    expected = json.loads(entry.after or "{}")
    out = []
    for column in sorted(set(expected) | set(found)):
        if column in canonical.SECRET_COLUMNS:
            continue
        if expected.get(column) != found.get(column):
            out.append(
                Finding(
                    "row",
                    f"{table_name} {key}: column {column}: expected {expected.get(column)!r} "
                    f"(entry {entry.seq}), found {found.get(column)!r}",
                    seq=entry.seq,
                    table=table_name,
                    key=key,
                    column=column,
                    expected=expected.get(column),
                    found=found.get(column),
                )
            )
    return out


def verify_rows(session: Session) -> list[Finding]:
    findings: list[Finding] = []
    connection = session.connection()
    for table in audited_tables():
        pk = list(table.primary_key.columns)
        # current rows, streamed by primary key, a chunk at a time, against their latest images
        result = connection.execution_options(yield_per=CHUNK).execute(select(table).order_by(*pk)).mappings()
        for rows in result.partitions(CHUNK):
            keyed = {recorder.key_text(recorder.row_key(table, r)): recorder.image(table, r) for r in rows}
            latest = _latest(session, table.name, list(keyed))
            for key, found in keyed.items():
                findings += _compare(table.name, key, latest.get(key), found)
        # rows the trail holds and the table no longer has (deleted behind the application's back)
        newest = (
            select(AuditEntry.row_key, func.max(AuditEntry.seq).label("seq"))
            .where(AuditEntry.table_name == table.name, AuditEntry.action.in_(recorder.ROW_ACTIONS))
            .group_by(AuditEntry.row_key)
            .subquery()
        )
        query = (
            select(AuditEntry.seq, AuditEntry.row_key, AuditEntry.action)
            .join(newest, and_(AuditEntry.seq == newest.c.seq))
            .order_by(AuditEntry.seq)
        )
        after_seq = 0
        while True:
            chunk = list(session.execute(query.where(AuditEntry.seq > after_seq).limit(CHUNK)))
            if not chunk:
                break
            live = [(seq, key) for seq, key, action in chunk if action != "delete"]
            if live:
                keys = [tuple(json.loads(key)) for _, key in live]
                present = {
                    recorder.key_text(recorder.row_key(table, r))
                    for r in connection.execute(select(*pk).where(recorder._key_filter(table, keys))).mappings()
                }
                for seq, key in live:
                    if key not in present:
                        findings.append(
                            Finding(
                                "row",
                                f"{table.name} {key}: row missing, but entry {seq} recorded it "
                                "(deleted behind the application's back)",
                                seq=seq,
                                table=table.name,
                                key=key,
                            )
                        )
            after_seq = chunk[-1][0]
            if len(chunk) < CHUNK:
                break
    return findings


def parse_digest(raw: str) -> tuple[int, str]:
    seq, _, value = raw.partition(":")
    if not seq.isdigit() or len(value) != 64:
        raise InvalidInput.field("digest", "expected SEQ:HASH (a sequence number and 64 hex digits)")
    return int(seq), value.lower()


def verify(session: Session, digest: tuple[int, str] | None = None) -> list[Finding]:
    """Every finding: chain breaks first (the first names the first entry that no longer matches),
    then rows that differ from their latest recorded image."""
    return verify_chain(session, digest) + verify_rows(session) + verify_signatures(session)


def verify_signatures(session: Session) -> list[Finding]:
    """Every signature whose manifest no longer says what was signed (hash recomputed now)."""
    from app.audit.signatures import mismatches

    return [
        Finding(
            "signature",
            f"manifest {manifest.number}: signature {check.signature.id} ({check.signature.step}, "
            f"{check.signature.party} {check.signature.signer_name}): the content differs from what was "
            f"signed (内容与签名不符): signed {check.signature.content_sha256}, now {check.current_sha256}",
            table="manifest_signatures",
            key=f"[{check.signature.id}]",
            expected=check.signature.content_sha256,
            found=check.current_sha256,
        )
        for manifest, check in mismatches(session)
    ]


def chain_head(session: Session) -> dict[str, Any]:
    entry = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
    if entry is None:
        return {"seq": 0, "hash": canonical.GENESIS, "recorded_at": None}
    return {"seq": entry.seq, "hash": entry.hash, "recorded_at": entry.recorded_at}


# ---------------------------------------------------------------- the starting state


def record_baseline(session: Session) -> int:
    """When the trail is empty: one ``insert`` image of every row already stored in an audited
    table, so that the chain starts from the state in which auditing began (e.g. the nine counties
    the migrations write, or a database that predates the trail). Never again once the trail has
    an entry: later rows without one are what ``audit verify`` must report. Returns the count
    staged; the caller commits."""
    if session.scalar(select(AuditEntry.seq).limit(1)) is not None:
        return 0
    connection = session.connection()
    entries: list[dict[str, Any]] = []
    for table in audited_tables():
        for row in connection.execute(select(table)).mappings():
            key = recorder.key_text(recorder.row_key(table, row))
            after = recorder.image(table, row)
            entries.append(
                {
                    "table_name": table.name,
                    "row_key": key,
                    "action": "insert",
                    "subject": recorder.subject_of(table.name, key, after, None),
                    "before": None,
                    "after": canonical.dumps(after),
                }
            )
    if entries:
        recorder.append(session, entries)
    return len(entries)


# ---------------------------------------------------------------- rule files


def record_rule_files(session: Session, rules_dir: str | None) -> int:
    """One ``rules`` entry when the rule files in force differ from the last recorded; returns
    the number of entries staged (0 or 1). The caller commits."""
    from app.rules.loader import RULE_FILES, rules_path

    files = {}
    for name in sorted(RULE_FILES):
        path = Path(rules_path(name, rules_dir))
        if path.is_file():
            files[name] = {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    last = session.scalar(
        select(AuditEntry.after).where(AuditEntry.table_name == "rule_files").order_by(AuditEntry.seq.desc()).limit(1)
    )
    wanted = {name: f["sha256"] for name, f in files.items()}
    if last is not None and {n: f["sha256"] for n, f in json.loads(last)["files"].items()} == wanted:
        return 0
    recorder.note(session, "rule_files", ["rules"], "rules", {"files": files}, subject="rule_files")
    return 1


# ---------------------------------------------------------------- reading the trail


def _visible_subject(session: Session, actor, subject: str) -> bool:
    from app.boxes.models import Box
    from app.boxes.services import box_scope
    from app.ledger.models import Manifest
    from app.ledger.services.manifests import manifest_scope

    if actor.is_operator:
        return True
    table, _, key = subject.partition(":")
    try:
        (object_id,) = json.loads(key)
    except (ValueError, TypeError):
        return False
    if table == "manifests":
        return session.scalar(select(Manifest.id).where(Manifest.id == object_id, manifest_scope(actor))) is not None
    if table == "boxes":
        return session.scalar(select(Box.id).where(Box.id == object_id, box_scope(actor))) is not None
    return False


def trail(
    session: Session,
    actor,
    *,
    table: str | None = None,
    row_id: str | None = None,
    manifest: str | None = None,
    box: str | None = None,
    after: int = 0,
    limit: int = 50,
) -> dict[str, Any]:
    """An object's entries, oldest first, keyset-paginated by ``after`` (the last seq seen).

    Operators read everything; others the manifests and boxes (and their lines, events, fills)
    their domains' visibility rules let them see (regulators: their jurisdiction). A manifest or
    box out of sight is 404 (existence is not disclosed); other tables are operators' (403)."""
    query = trail_query(session, actor, table=table, row_id=row_id, manifest=manifest, box=box)
    entries = list(session.scalars(query.where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(limit + 1)))
    more = len(entries) > limit
    entries = entries[:limit]
    return {"items": [entry_out(e) for e in entries], "next_after": entries[-1].seq if more else None}


def trail_query(
    session: Session,
    actor,
    *,
    table: str | None = None,
    row_id: str | None = None,
    manifest: str | None = None,
    box: str | None = None,
):
    """The entries :func:`trail` reads, unordered (its checks: 403 / 404 / 422 as it answers)."""
    if actor.is_device:
        raise Forbidden("设备令牌不能查看审计记录 (device tokens cannot read the audit trail)")
    query = select(AuditEntry)
    if manifest:
        from app.ledger.services.manifests import get_manifest

        query = query.where(AuditEntry.subject == f"manifests:[{get_manifest(session, actor, manifest).id}]")
    elif box:
        from app.boxes.services import get_box

        query = query.where(AuditEntry.subject == f"boxes:[{get_box(session, actor, box).id}]")
    elif table and row_id:
        key = canonical.dumps(
            [int(row_id)] if row_id.isdigit() else json.loads(row_id) if row_id.startswith("[") else [row_id]
        )
        query = query.where(AuditEntry.table_name == table, AuditEntry.row_key == key)
        if not actor.is_operator:
            subject = session.scalar(
                select(AuditEntry.subject).where(AuditEntry.table_name == table, AuditEntry.row_key == key).limit(1)
            )
            if subject is None or subject.partition(":")[0] not in ("manifests", "boxes"):
                if table not in ("manifests", "boxes"):
                    raise Forbidden("只有平台运维可以查看此表的审计记录 (only operators read this table's trail)")
                raise NotFound(f"{table} {row_id} 不存在或无权查看 (not found)")
            if not _visible_subject(session, actor, subject):
                raise NotFound(f"{table} {row_id} 不存在或无权查看 (not found)")
    elif actor.is_operator and table:
        query = query.where(AuditEntry.table_name == table)
    elif not actor.is_operator:
        raise InvalidInput.field("table", "name an object: table and id, manifest or box")
    return query


def entry_out(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "recorded_at": entry.recorded_at,
        "interface": entry.interface,
        "user_id": entry.user_id,
        "org_id": entry.org_id,
        "actor": entry.actor,
        "table": entry.table_name,
        "key": json.loads(entry.row_key),
        "subject": entry.subject,
        "action": entry.action,
        "before": json.loads(entry.before) if entry.before else None,
        "after": json.loads(entry.after) if entry.after else None,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }
