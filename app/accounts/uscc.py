"""统一社会信用代码 (Unified Social Credit Code), GB 32100-2015.

18 characters: registration authority (1), organisation type (1), administrative division (6),
organisation code (9), check character (1). The alphabet leaves out I, O, S, V and Z.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_character(first17: str) -> str:
    total = sum(ALPHABET.index(ch) * w for ch, w in zip(first17, WEIGHTS, strict=False))
    return ALPHABET[(31 - total % 31) % 31]


def uscc_error(value: str) -> str | None:
    """The reason ``value`` is not a valid USCC, or None when it is."""
    if len(value) != 18:
        return "统一社会信用代码应为18位 (a USCC has 18 characters)"
    bad = [ch for ch in value if ch not in ALPHABET]
    if bad:
        return f"含有非法字符 {''.join(sorted(set(bad)))} (invalid characters; I, O, S, V, Z are never used)"
    if not value[2:8].isdigit():
        return "第3-8位应为行政区划码 (characters 3-8 must be the administrative division code)"
    expected = check_character(value[:17])
    if value[17] != expected:
        return f"校验码错误 (check character mismatch: expected {expected})"
    return None


def normalise_uscc(value: str) -> str:
    return value.strip().upper()


def make_uscc(first17: str) -> str:
    """Complete 17 characters with their check character (demo data, tests)."""
    return first17 + check_character(first17)
