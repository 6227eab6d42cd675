"""Signed hand-overs: each manifest step is signed by a named person of the acting party who
authenticates at that moment (issue 10; CROMERR, Trackdéchets).

For callers the whole of it is two calls:

* the view builds a :class:`SignatureProof` with :func:`authenticate_signer` (the signer's
  password, or the consignor's one-time hand-over code) — :mod:`app.audit.signing_forms` does it
  for a page form or an API body, with the sign-in throttle;
* the step service takes ``signature=proof`` (pickup also ``handover=proof``), checks it with
  :func:`require` before it changes anything and stores it with :func:`record` once the step's
  fields are set, so the signature's hash covers what the step wrote.

:func:`signed_content` is the manifest's content a step's signer attests to (the fields written up
to and including that step, nothing a later step legitimately changes); its SHA-256, recomputed
at any time, shows whether the manifest still says what was signed (:func:`checks`, the
verification page, ``audit verify``). No Flask here.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.audit import canonical
from app.audit.models import HandoverCode, ManifestSignature, SignatureMethod
from app.common.columns import kg
from app.common.errors import Conflict, DomainError, Forbidden, InvalidInput, Unauthorized
from app.common.timeutil import utcnow

if TYPE_CHECKING:
    from app.accounts.models import User
    from app.accounts.services import Principal
    from app.ledger.models import Manifest

HANDOVER_CODE_MINUTES = 30
HANDOVER_CODE_DIGITS = 6
# Which party signs which step; the consignor also signs the pickup (its hand-over).
STEP_PARTY = {
    "submit": "consignor",
    "pickup": "carrier",
    "receive": "receiver",
    "reject": "receiver",
    "process": "receiver",
}
SIGNED_STEPS = tuple(STEP_PARTY)


class TooManyAttempts(DomainError):
    status = 429
    title = "Too Many Requests"


@dataclass(frozen=True)
class SignatureProof:
    """A person who has just authenticated to sign: with their password, or (the consignor's
    hand-over) through the one-time code they issued, typed by ``entered_by``."""

    user: User
    method: SignatureMethod
    authenticated_at: datetime
    entered_by: User | None = None

    @classmethod
    def attested(cls, user: User, at: datetime, method: SignatureMethod = SignatureMethod.PASSWORD) -> SignatureProof:
        """A proof without a check, for the demo loader and trusted scripts only (never a request)."""
        return cls(user=user, method=method, authenticated_at=at)


class SignerThrottle(Protocol):
    """Failed attempts, counted outside the transaction (a refused request rolls back)."""

    def wait(self, kind: str, key: str) -> int | None:
        """Seconds to wait before another attempt, or None."""

    def failed(self, kind: str, key: str) -> None: ...


def _throttled(throttle: SignerThrottle | None, kind: str, key: str, field: str) -> None:
    wait = throttle.wait(kind, key) if throttle is not None else None
    if wait is not None:
        raise TooManyAttempts(
            f"尝试次数过多，请 {max(1, -(-wait // 60))} 分钟后再试 (too many failed attempts; retry later)",
            errors={field: ["too many failed attempts"]},
            retry_after=wait,
        )


def authenticate_signer(
    session: Session,
    user: User | None,
    password: str | None = None,
    one_time_code: str | None = None,
    *,
    manifest: Manifest | None = None,
    now: datetime | None = None,
    throttle: SignerThrottle | None = None,
    field: str = "signature",
) -> SignatureProof:
    """The one way to a :class:`SignatureProof`.

    ``password``: ``user`` signs, re-checked against the account's hash (401 when wrong).
    ``one_time_code``: the consignor's hand-over code for ``manifest``, typed by ``user`` (the
    carrier); the signer is the staff member who issued it; the code is used up. Nobody signs
    without a person (a device token: 403)."""
    now = now or utcnow()
    if user is None:
        raise Forbidden(
            "设备令牌不能签名，签名须由本人登录 (device tokens cannot sign; a person signs)",
            errors={field: ["a person signs: device tokens cannot"]},
        )
    if password:
        _throttled(throttle, "password", user.username, field)
        if not (user.password_hash and check_password_hash(user.password_hash, password)) or not user.active:
            if throttle is not None:
                throttle.failed("password", user.username)
            raise Unauthorized(
                "签名密码错误 (wrong password: the signature was not made)",
                errors={f"{field}.password": ["wrong password"]},
            )
        return SignatureProof(user=user, method=SignatureMethod.PASSWORD, authenticated_at=now)
    if one_time_code:
        if manifest is None:
            raise InvalidInput.field(f"{field}.one_time_code", "a one-time code signs one manifest: name it")
        _throttled(throttle, "one_time_code", manifest.number, field)
        code = (one_time_code or "").strip()
        found = None
        if code.isdigit() and len(code) == HANDOVER_CODE_DIGITS:
            for row in session.scalars(
                select(HandoverCode).where(
                    HandoverCode.manifest_id == manifest.id,
                    HandoverCode.used_at.is_(None),
                    HandoverCode.expires_at > now,
                )
            ):
                if check_password_hash(row.code_hash, code):
                    found = row
                    break
        signer = _user(session, found.issued_by_user_id) if found is not None else None
        if found is None or signer is None or not signer.active:
            if throttle is not None:
                throttle.failed("one_time_code", manifest.number)
            raise Unauthorized(
                "交接码错误、已过期或已使用 (wrong, expired or used one-time code)",
                errors={f"{field}.one_time_code": ["wrong, expired or already used"]},
            )
        found.used_at = now
        found.used_by_user_id = user.id
        return SignatureProof(user=signer, method=SignatureMethod.ONE_TIME_CODE, authenticated_at=now, entered_by=user)
    raise InvalidInput.field(field, "required: the signer's password (or the consignor's one-time code)")


def _user(session: Session, user_id: int | None) -> User | None:
    from app.accounts.models import User

    return session.get(User, user_id) if user_id else None


# ---------------------------------------------------------------- hand-over codes


def issue_handover_code(
    session: Session, actor: Principal, manifest: Manifest, now: datetime | None = None
) -> tuple[str, HandoverCode]:
    """A 6-digit code for the carrier to type at pickup, from a consignor's staff member, valid
    :data:`HANDOVER_CODE_MINUTES`; an earlier unused code of the manifest stops working."""
    now = now or utcnow()
    org = actor.organization
    if actor.user is None or actor.is_device or org is None or org.id != manifest.consignor_id:
        raise Forbidden("只有本联单移出人的员工可以生成交接码 (only the consignor's staff issue hand-over codes)")
    if manifest.status != "submitted":
        raise Conflict(
            f"联单 {manifest.number} 未处于待提货状态，不能生成交接码 (hand-over codes are for submitted manifests)",
            status_now=manifest.status,
        )
    from app.common.wiring import wiring_of

    session.execute(
        update(HandoverCode)
        .where(HandoverCode.manifest_id == manifest.id, HandoverCode.used_at.is_(None), HandoverCode.expires_at > now)
        .values(expires_at=now)
    )
    code = f"{secrets.randbelow(10**HANDOVER_CODE_DIGITS):0{HANDOVER_CODE_DIGITS}d}"
    row = HandoverCode(
        manifest_id=manifest.id,
        code_hash=generate_password_hash(code, method=wiring_of(session).password_hash_method),
        issued_by_user_id=actor.user.id,
        organization_id=org.id,
        created_at=now,
        expires_at=now + timedelta(minutes=HANDOVER_CODE_MINUTES),
    )
    session.add(row)
    session.flush()
    return code, row


# ---------------------------------------------------------------- what is signed


def _kg(value: Any) -> str | None:
    return None if value is None else format(kg(value), "f")


def signed_content(manifest: Manifest, step: str) -> dict[str, Any]:
    """The manifest's content a ``step``'s signer attests to: what that step and the steps
    before it wrote (parties, lines, quantities, vehicle, weights, methods, times)."""
    content: dict[str, Any] = {
        "number": manifest.number,
        "origin": manifest.origin,
        "consignor_id": manifest.consignor_id,
        "carrier_id": manifest.carrier_id,
        "receiver_id": manifest.receiver_id,
        "receiver_licence": manifest.receiver_licence,
        "route": manifest.route,
        "note": manifest.note,
        "submitted_at": canonical.plain(manifest.submitted_at),
    }
    lines: list[dict[str, Any]] = [
        {
            "line_no": line.line_no,
            "waste_code": line.waste_code,
            "waste_name": line.waste_name,
            "category": line.category,
            "physical_form": line.physical_form,
            "hazard": line.hazard,
            "packaging": line.packaging,
            "quantity_kg": _kg(line.quantity_kg),
        }
        for line in manifest.lines
    ]
    by_no = {line.line_no: line for line in manifest.lines}
    if step != "submit":
        content |= {
            "vehicle_plate": manifest.vehicle_plate,
            "driver_name": manifest.driver_name,
            "driver_phone": manifest.driver_phone,
            "picked_up_at": canonical.plain(manifest.picked_up_at),
        }
    if step in ("receive", "process"):
        content |= {"received_at": canonical.plain(manifest.received_at), "acceptance": manifest.acceptance}
        for item in lines:
            line = by_no[item["line_no"]]
            item |= {
                "received_kg": _kg(line.received_kg),
                "accepted_kg": _kg(line.accepted_kg),
                "refusal_reason": line.refusal_reason,
            }
    if step == "reject":
        content |= {
            "rejected_at": canonical.plain(manifest.rejected_at),
            "reject_reason": manifest.reject_reason,
            "acceptance": manifest.acceptance,
        }
        for item in lines:
            line = by_no[item["line_no"]]
            item |= {"accepted_kg": _kg(line.accepted_kg), "refusal_reason": line.refusal_reason}
    if step == "process":
        content["processed_at"] = canonical.plain(manifest.processed_at)
        for item in lines:
            item["method_code"] = by_no[item["line_no"]].method_code
    content["lines"] = lines
    content["step"] = step
    return content


def content_hash(manifest: Manifest, step: str) -> str:
    return canonical.digest(signed_content(manifest, step))


# ---------------------------------------------------------------- signing a step


def require(
    actor: Principal,
    manifest: Manifest,
    party: str,
    proof: SignatureProof | None,
    *,
    field: str = "signature",
    own: bool = True,
) -> SignatureProof:
    """The step's signature is there and made by a person of ``party`` (422 per field otherwise).
    ``own``: the acting user signs (their password); else (the consignor's hand-over) any of the
    party's staff, by password or one-time code."""
    if actor.is_device or actor.user is None:
        raise Forbidden(
            "设备令牌不能签名 (device tokens cannot sign)", errors={field: ["a person signs: device tokens cannot"]}
        )
    if proof is None:
        what = "the signer's password" if own else "the consignor's one-time code (or a consignor staff password)"
        raise InvalidInput.field(field, f"required: {what}")
    if own and proof.user.id != actor.user.id:
        raise InvalidInput.field(field, "the step is signed by the signed-in user")
    org_id = {"consignor": manifest.consignor_id, "carrier": manifest.carrier_id, "receiver": manifest.receiver_id}[
        party
    ]
    if proof.user.organization_id != org_id:
        raise InvalidInput.field(field, f"the signer is not staff of the manifest's {party}")
    return proof


def record(
    session: Session, manifest: Manifest, step: str, party: str, proof: SignatureProof, now: datetime
) -> ManifestSignature:
    """Store the signature, with the hash of the content as the step left it."""
    org = proof.user.organization
    signature = ManifestSignature(
        manifest_id=manifest.id,
        step=step,
        party=party,
        user_id=proof.user.id,
        signer_name=proof.user.display_name or proof.user.username,
        organization_id=proof.user.organization_id,
        organization_name=org.name if org is not None else "",
        signed_at=now,
        method=proof.method,
        content_sha256=content_hash(manifest, step),
        manifest_version=manifest.version or 1,
        entered_by_user_id=proof.entered_by.id if proof.entered_by is not None else None,
    )
    manifest.signatures.append(signature)
    return signature


# ---------------------------------------------------------------- reading and checking


def signatures_of(session: Session, manifest: Manifest) -> list[ManifestSignature]:
    return list(manifest.signatures)


@dataclass(frozen=True)
class SignatureCheck:
    signature: ManifestSignature
    current_sha256: str

    current_version: int = 1

    @property
    def matches(self) -> bool:
        return self.signature.content_sha256 == self.current_sha256

    @property
    def superseded(self) -> bool:
        """Signed on a version an approved revision has replaced: its content changed by consent
        of the parties (the revision's trail), not behind the application's back."""
        return self.signature.manifest_version < self.current_version

    @property
    def broken(self) -> bool:
        return not self.matches and not self.superseded


def checks(session: Session, manifest: Manifest) -> list[SignatureCheck]:
    """Each signature of ``manifest`` against the hash of its current content, recomputed now."""
    version = manifest.version or 1
    return [SignatureCheck(s, content_hash(manifest, s.step), version) for s in signatures_of(session, manifest)]


def mismatches(session: Session) -> list[tuple[Manifest, SignatureCheck]]:
    """Every signature whose manifest no longer says what was signed (for ``audit verify``)."""
    from app.ledger.models import Manifest

    out = []
    signed = select(ManifestSignature.manifest_id).distinct()
    for manifest in session.scalars(select(Manifest).where(Manifest.id.in_(signed)).order_by(Manifest.id)):
        out += [(manifest, check) for check in checks(session, manifest) if check.broken]
    return out
