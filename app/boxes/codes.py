"""Box codes: short, human-readable, unique, with a check character.

Format ``NN-XXXXXC``: two digits of the county (last two of the GB/T 2260 code, ``00`` for the
city), five characters and a check character, all from a 29-character alphabet: Crockford's
base 32 without S, Z (read as 5 and 2) and V. The check is a pure system modulo the prime 29 with
weights 2^i (2 is a primitive root of 29, so the weights of the eight positions differ and none
is 1 apart from its neighbour): it catches every single mistyped character and every swap of two
adjacent characters (ISO/IEC 7064 pure-system construction). Input is forgiving: lower case,
O→0, I/L→1, S→5, Z→2, hyphens and spaces ignored.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRTWXY"
_P = len(ALPHABET)  # 29, prime
_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1", "S": "5", "Z": "2"})


def _weighted_sum(chars: str) -> int:
    # The last character has weight 1, the one before it 2, then 4, … (mod 29).
    total = 0
    for ch in chars:
        total = (total * 2 + _INDEX[ch]) % _P
    return total


def check_character(payload: str) -> str:
    # Choose c so that the weighted sum of payload + c is 0 (mod 29).
    return ALPHABET[(-_weighted_sum(payload) * 2) % _P]


def _valid(payload_with_check: str) -> bool:
    return _weighted_sum(payload_with_check) == 0


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
