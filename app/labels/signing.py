"""Signing of label URLs.

Each printed label carries ``{PUBLIC_BASE_URL}/c/{code}?v={label_version}&s={signature}``.
The signature is an HMAC-SHA256 over ``f"{code}:{version}"`` keyed with the
application secret, truncated to 16 lowercase base32 characters (80 bits) so
the QR code stays small.  Bumping ``label_version`` (e.g. when a label is
reprinted) invalidates every previously printed label of that box.

Pure Python, no Flask imports.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

__all__ = ["SIGNATURE_LENGTH", "label_url", "sign_label", "verify_label"]

#: Number of characters in a label signature (16 base32 chars = 80 bits).
SIGNATURE_LENGTH = 16


def _check_version(version: int) -> int:
    # bool is a subclass of int; True/False is never a meaningful label version.
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(f"label version must be an int, got {type(version).__name__}")
    if version < 0:
        raise ValueError("label version must be >= 0")
    return version


def _check_text(name: str, value: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value


def sign_label(secret: str, code: str, version: int) -> str:
    """Return the 16-character signature for ``code`` at label ``version``.

    HMAC-SHA256 over ``f"{code}:{version}"`` (UTF-8), base32-encoded
    (RFC 4648 alphabet, lowercase, URL-safe, no padding) and truncated.
    The message is unambiguous because ``version`` is always a bare integer
    after the last ``:``.
    """
    _check_text("secret", secret)
    _check_text("code", code)
    _check_version(version)
    mac = hmac.new(secret.encode("utf-8"), f"{code}:{version}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode("ascii").lower()[:SIGNATURE_LENGTH]


def verify_label(secret: str, code: str, version: int, signature: str) -> bool:
    """Constant-time check of a label signature.  Never raises on bad input.

    Upper-case signatures are accepted (base32 is case-insensitive and some
    scanners upper-case URLs); anything that is not a well-formed input simply
    verifies as ``False``.
    """
    if not isinstance(signature, str):
        return False
    try:
        expected = sign_label(secret, code, version)
    except (TypeError, ValueError):
        return False
    candidate = signature.strip().lower().encode("utf-8")
    # compare_digest on bytes works for any input (str version needs ASCII).
    return hmac.compare_digest(expected.encode("ascii"), candidate)


def label_url(base_url: str, code: str, version: int, secret: str) -> str:
    """Build the URL encoded in the QR: ``{base}/c/{code}?v={version}&s={sig}``.

    Trailing slashes on ``base_url`` are ignored; ``code`` is percent-encoded
    as a single path segment (box codes are normally plain ASCII, so this is a
    no-op for them).
    """
    _check_text("base_url", base_url)
    signature = sign_label(secret, code, version)
    base = base_url.rstrip("/")
    return f"{base}/c/{quote(code, safe='')}?v={version}&s={signature}"
