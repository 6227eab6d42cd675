"""Rule files that regulators may change: loaded from ``app/data`` (or ``$RULES_DIR``), validated.

:func:`load_rule_file` is the one way in: it reads a rule file, validates it against its declared
schema (``app/rules/schemas/<file>.schema.yaml``, JSON Schema 2020-12) and against the checks a
schema cannot express (the domain's own parser), and returns plain data. :func:`check_dir` does
the same for every rule file of a folder. See :mod:`app.rules.loader`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


class RulesError(ValueError):
    """A rule file is invalid. The message lists every problem found, with its place.

    ``problems`` holds the problems one by one (each ``where: key path: what is wrong``).
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems) if problems is not None else [message]

    @classmethod
    def listing(cls, where: str, problems: list[str]) -> RulesError:
        """The error of a parser: ``where: p1; p2`` and the problems relative to the file."""
        return cls(f"{where}: " + "; ".join(problems), problems)


def rules_path(name: str, override_dir: str | None = None) -> Path:
    if override_dir:
        candidate = Path(override_dir) / name
        if candidate.exists():
            return candidate
    return DATA_DIR / name


def load_yaml(path: Path) -> dict:
    """Read a YAML mapping without validation (kept for callers outside the rule files)."""
    try:
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise RulesError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise RulesError(f"{path}: expected a mapping at the top level")
    return data


from app.rules.loader import RULE_FILES, check_dir, load_rule_file  # noqa: E402  (uses the names above)

__all__ = ["DATA_DIR", "RULE_FILES", "RulesError", "check_dir", "load_rule_file", "load_yaml", "rules_path"]
