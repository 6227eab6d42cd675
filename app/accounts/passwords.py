"""The password policy, for every place a password is set (a new user, ``create-superuser``, a change).

* at least :data:`MIN_LENGTH` characters (10: NIST SP 800-63B asks 8 at the least; an account here
  can sign manifests, so a little more), at most :data:`MAX_LENGTH`;
* not one of the 10,000 most common passwords (``common_passwords.txt``, from zxcvbn's MIT-licensed
  list), compared without case and without surrounding spaces;
* not the username (nor the username repeated, reversed, with digits or symbols around it), not
  one or two characters repeated.

No composition rules (a digit, a capital…): they make passwords harder to remember, not to guess.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

MIN_LENGTH = 10
MAX_LENGTH = 200
_LIST = Path(__file__).with_name("common_passwords.txt")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list (read once: a constant of the package, not configuration)."""
    lines = _LIST.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def password_problems(password: str, username: str | None = None) -> list[str]:
    """Why ``password`` may not be used (English messages, the pages translate them); [] when it may."""
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(f"at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"at most {MAX_LENGTH} characters")
    folded = password.strip().casefold()
    stem = re.sub(r"[\d\W_]+$", "", folded)  # "password123!" is "password" with a suffix
    if folded in common_passwords() or (len(folded) < 16 and stem in common_passwords()):
        problems.append("too common: choose a password that is not on lists of common passwords")
    elif len(set(folded)) <= 2:
        problems.append("too simple: one or two characters repeated")
    if username:
        name = username.strip().casefold()
        # The username, repeated or reversed, with digits and symbols around: no letters of its own.
        rest = re.sub(r"[\d\W_]+", "", folded.replace(name, "").replace(name[::-1], "")) if name else "x"
        if name and not rest:
            problems.append("must not be the username")
    return problems
