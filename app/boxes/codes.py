"""Box codes: short, human-readable, unique, with a check character.

Format ``NN-XXXXXC``: two digits of the county (last two of the GB/T 2260 code, ``00`` for the
city), five characters from a 30-character alphabet, and a check character computed with
ISO/IEC 7064 hybrid MOD 31,30, which catches every single mistyped character and every swap of
two adjacent characters. The alphabet is Crockford's base 32 without S and Z (read as 5 and 2),
so input is forgiving: lower case, O→0, I/L→1, S→5, Z→2, hyphens and spaces ignored.
"""
from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRTVWXY"
_M = len(ALPHABET)  # 30; M + 1 = 31 is prime, as ISO 7064 hybrid systems require
_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1", "S": "5", "Z": "2"})


def _hybrid(payload: str) -> int:
    p = _M
    for ch in payload:
        s = (p + _INDEX[ch]) % _M or _M
        p = (2 * s) % (_M + 1)
    return p


def check_character(payload: str) -> str:
    return ALPHABET[(_M + 1 - _hybrid(payload)) % _M]


def _valid(payload_with_check: str) -> bool:
    p = _M
    for ch in payload_with_check[:-1]:
        s = (p + _INDEX[ch]) % _M or _M
        p = (2 * s) % (_M + 1)
    return ((p + _INDEX[payload_with_check[-1]]) % _M or _M) == 1


def make_code(county_code: str | None, random_part: str | None = None) -> str:
    prefix = (county_code or "000000")[-2:]
    body = random_part or "".join(secrets.choice(ALPHABET) for _ in range(5))
    return f"{prefix}-{body}{check_character(prefix + body)}"


def normalise(raw: str) -> str | None:
    """The canonical code for what a user typed, or None when it cannot be a box code
    (wrong length, a character outside the alphabet, or a check character that does not match)."""
    cleaned = raw.strip().upper().replace("-", "").replace(" ", "").translate(_ALIASES)
    if len(cleaned) != 8 or not cleaned[:2].isdigit() or any(ch not in _INDEX for ch in cleaned):
        return None
    if not _valid(cleaned):
        return None
    return f"{cleaned[:2]}-{cleaned[2:]}"
