"""Signing from a request: the page forms' and the API bodies' signature fields, turned into
:class:`app.audit.signatures.SignatureProof` with the sign-in throttle. Flask side of the
signatures (views call these; services take the proofs).

A page step form adds signing in three lines::

    {% include "_signature_fields.html" %}                       {# in the form (handover=True: the code) #}
    proof = signature_from_form(db.session, current_user, request.form, manifest)   # in the view
    services.receive(db.session, principal, manifest, data, signature=proof)        # the service call

An API view: ``signature_from_body(db.session(), actor, body, manifest)`` (the ``signature``
object), and for pickup ``handover_from_body``.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from flask import current_app
from limits import parse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.signatures import SignatureProof, authenticate_signer
from app.common.errors import InvalidInput, Unauthorized

if TYPE_CHECKING:
    from app.accounts.models import User
    from app.accounts.services import Principal
    from app.ledger.models import Manifest

# The form fields of _signature_fields.html.
PASSWORD_FIELD = "signature_password"
CODE_FIELD = "handover_code"


class RequestThrottle:
    """Passwords count against the sign-in throttle's budget of the account (signing is no way
    around it); hand-over codes against a budget per manifest (``HANDOVER_CODE_FAILURES``,
    default 5 per 30 minutes), in the same storage. A storage outage does not stop signing."""

    def wait(self, kind: str, key: str) -> int | None:
        from app.accounts import throttle

        if kind == "password":
            found = throttle.check(key)
            return found.retry_after if found is not None else None
        try:
            strategy = current_app.extensions[throttle.EXTENSION_KEY].limiter
            item = self._code_budget()
            if strategy.test(item, "handover-code-failures", key):
                return None
            reset_at, _remaining = strategy.get_window_stats(item, "handover-code-failures", key)
            return max(1, math.ceil(reset_at - time.time()))
        except Exception as exc:  # as the sign-in throttle: an outage never locks everyone out
            current_app.logger.warning("hand-over code throttle unavailable: %s", exc)
            return None

    def failed(self, kind: str, key: str) -> None:
        from app.accounts import throttle

        if kind == "password":
            throttle.failed(key)
            return
        try:
            strategy = current_app.extensions[throttle.EXTENSION_KEY].limiter
            strategy.hit(self._code_budget(), "handover-code-failures", key)
        except Exception as exc:
            current_app.logger.warning("hand-over code throttle unavailable: %s", exc)

    @staticmethod
    def _code_budget():
        return parse(current_app.config.get("HANDOVER_CODE_FAILURES", "5 per 30 minutes"))


def _person(user: Any) -> User | None:
    """The signed-in user (Flask-Login's proxy unwrapped), or None."""
    if user is None or not getattr(user, "is_authenticated", True):
        return None
    getter = getattr(user, "_get_current_object", None)
    return getter() if getter is not None else user


# ---------------------------------------------------------------- page forms


def signature_from_form(session: Session, user: Any, form: Any, manifest: Manifest | None = None) -> SignatureProof:
    """The signer's password from ``_signature_fields.html`` (raises the DomainError to show)."""
    return authenticate_signer(
        session,
        _person(user),
        password=form.get(PASSWORD_FIELD) or None,
        manifest=manifest,
        throttle=RequestThrottle(),
    )


def handover_from_form(session: Session, user: Any, form: Any, manifest: Manifest) -> SignatureProof:
    """The consignor's one-time code typed by the carrier (``_signature_fields.html`` with handover)."""
    code = (form.get(CODE_FIELD) or "").strip()
    if not code:
        raise InvalidInput.field("handover", "required: the consignor's one-time code")
    return authenticate_signer(
        session, _person(user), one_time_code=code, manifest=manifest, throttle=RequestThrottle(), field="handover"
    )


# ---------------------------------------------------------------- API bodies


def signature_from_body(
    session: Session, actor: Principal, body: dict[str, Any], manifest: Manifest | None = None
) -> SignatureProof | None:
    """``body["signature"]`` (taken out of the body): the token user's password. None when absent
    (the service then answers 422 ``signature: required``)."""
    raw = body.pop("signature", None)
    if raw is None:
        if actor.is_device:
            return authenticate_signer(session, None)  # raises: device tokens cannot sign
        return None
    return authenticate_signer(
        session, actor.user, password=raw.get("password"), manifest=manifest, throttle=RequestThrottle()
    )


def handover_from_body(
    session: Session, actor: Principal, body: dict[str, Any], manifest: Manifest
) -> SignatureProof | None:
    """``body["handover"]``: the consignor's one-time code, or a consignor staff member's
    username and password (typed on the carrier's device)."""
    raw = body.pop("handover", None)
    if raw is None:
        return None
    throttle = RequestThrottle()
    if raw.get("one_time_code"):
        return authenticate_signer(
            session,
            actor.user,
            one_time_code=raw["one_time_code"],
            manifest=manifest,
            throttle=throttle,
            field="handover",
        )
    if raw.get("username") and raw.get("password"):
        from app.accounts.models import User

        signer = session.scalar(select(User).where(User.username == raw["username"]))
        if signer is None:
            throttle.failed("password", raw["username"])
            raise Unauthorized(
                "交接签名的用户名或密码错误 (wrong username or password for the hand-over)",
                errors={"handover.password": ["wrong username or password"]},
            )
        return authenticate_signer(session, signer, password=raw["password"], throttle=throttle, field="handover")
    raise InvalidInput.field("handover", "the consignor's one_time_code, or a consignor staff username and password")
