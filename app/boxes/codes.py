"""Box codes: short, human-readable, unique, with a check character.

Format ``NN-XXXXXC``: two digits of the county (last two of the GB/T 2260 code, ``00`` for the
city), five Crockford base-32 characters, and a Luhn mod 32 check character, which catches
every single mistyped character and every swap of two adjacent characters.
Input is forgiving the way Crockford intends: lower case, O→0, I/L→1, and no hyphen.
"""
from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
_N = len(ALPHABET)
_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def _luhn_check(payload: str) -> str:
    factor = 2
    total = 0
    for ch in reversed(payload):
        addend = factor * _INDEX[ch]
        factor = 1 if factor == 2 else 2
        total += addend // _N + addend % _N
    return ALPHABET[(_N - total % _N) % _N]


def _valid(payload_with_check: str) -> bool:
    return _luhn_check(payload_with_check[:-1]) == payload_with_check[-1]


def make_code(county_code: str | None, random_part: str | None = None) -> str:
    prefix = (county_code or "000000")[-2:]
    body = random_part or "".join(secrets.choice(ALPHABET) for _ in range(5))
    payload = prefix + body
    return f"{prefix}-{body}{_luhn_check(payload)}"


def normalise(raw: str) -> str | None:
    """The canonical code for what a user typed, or None when it cannot be a box code
    (wrong length, a character outside the alphabet, or a check character that does not match)."""
    cleaned = raw.strip().upper().replace("-", "").replace(" ", "").translate(_ALIASES)
    if len(cleaned) != 8 or not cleaned[:2].isdigit() or any(ch not in _INDEX for ch in cleaned):
        return None
    if not _valid(cleaned):
        return None
    return f"{cleaned[:2]}-{cleaned[2:]}"
