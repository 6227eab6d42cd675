"""Rule files that regulators may change: loaded from ``app/data`` (or ``$RULES_DIR``), validated."""
from __future__ import annotations

from pathlib import Path

import yaml

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


class RulesError(ValueError):
    """A rule file is invalid. The message lists every problem found, with its place."""


def rules_path(name: str, override_dir: str | None = None) -> Path:
    if override_dir:
        candidate = Path(override_dir) / name
        if candidate.exists():
            return candidate
    return DATA_DIR / name


def load_yaml(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise RulesError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise RulesError(f"{path}: expected a mapping at the top level")
    return data
