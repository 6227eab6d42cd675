"""Reference data of the ledger, shipped inside the app and validated when loaded.

- The national catalogue of hazardous wastes (国家危险废物名录), keyed by edition so that a later
  edition (2025) can be added beside the 2021 one without touching the code that uses it.
- The 利用/处置方式 method codes (HJ 1033 appendix F).
- The ledger/manifest/anomaly thresholds (``ledger_rules.yaml``).

No Flask here. A broken data file raises :class:`app.rules.RulesError` with every problem listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.rules import RulesError, load_rule_file, rules_path

METHODS_FILE = "disposal_methods.yaml"
LEDGER_RULES_FILE = "ledger_rules.yaml"

CODE_RE = re.compile(r"^\d{3}-\d{3}-\d{2}$")
CATEGORY_RE = re.compile(r"^HW(\d{2})$")
HAZARDS = ("T", "C", "I", "R", "In")


@dataclass(frozen=True)
class CatalogueEdition:
    edition: str
    filename: str
    expected_codes: int
    title: str


# Add a new edition here (and its CSV under app/data); CURRENT_EDITION decides what new records use.
EDITIONS: dict[str, CatalogueEdition] = {
    "2021": CatalogueEdition("2021", "hw-catalog-2021.csv", 467, "国家危险废物名录（2021年版）"),
}
CURRENT_EDITION = "2021"


@dataclass(frozen=True)
class WasteEntry:
    code: str
    category: str  # HW49
    category_name: str
    industry: str
    description: str
    hazards: tuple[str, ...]

    @property
    def hazard(self) -> str:
        return "/".join(self.hazards)


@dataclass(frozen=True)
class Catalogue:
    edition: str
    title: str
    entries: dict[str, WasteEntry]

    def get(self, code: str) -> WasteEntry | None:
        return self.entries.get(code)

    def __contains__(self, code: str) -> bool:
        return code in self.entries

    def __len__(self) -> int:
        return len(self.entries)


def parse_hazards(value: str) -> tuple[str, ...] | None:
    parts = tuple(p.strip() for p in (value or "").split("/") if p.strip())
    if not parts or any(p not in HAZARDS for p in parts) or len(set(parts)) != len(parts):
        return None
    return parts


def parse_catalogue(rows: list[dict[str, str]], edition: CatalogueEdition, where: str) -> Catalogue:
    problems: list[str] = []
    entries: dict[str, WasteEntry] = {}
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        code = (row.get("code") or "").strip()
        category = (row.get("category") or "").strip()
        cat = CATEGORY_RE.match(category)
        if not CODE_RE.match(code):
            problems.append(f"line {i}: code {code!r} is not NNN-NNN-NN")
            continue
        if cat is None:
            problems.append(f"line {i}: category {category!r} is not HWnn")
            continue
        if code[-2:] != cat.group(1):
            problems.append(f"line {i}: code {code} does not end with its category number {category}")
        if code in entries:
            problems.append(f"line {i}: code {code} appears twice")
        hazards = parse_hazards(row.get("hazard") or "")
        if hazards is None:
            problems.append(f"line {i}: hazard {row.get('hazard')!r} is not '/'-separated {', '.join(HAZARDS)}")
            hazards = ()
        if not (row.get("description") or "").strip():
            problems.append(f"line {i}: description is empty")
        entries[code] = WasteEntry(
            code=code,
            category=category,
            category_name=(row.get("category_name") or "").strip(),
            industry=(row.get("industry") or "").strip(),
            description=(row.get("description") or "").strip(),
            hazards=hazards,
        )
    if len(entries) != edition.expected_codes:
        problems.append(f"{len(entries)} unique codes, expected {edition.expected_codes}")
    if problems:
        raise RulesError(f"{where}: " + "; ".join(problems[:20]) + (" …" if len(problems) > 20 else ""), problems)
    return Catalogue(edition=edition.edition, title=edition.title, entries=entries)


@lru_cache(maxsize=4)
def load_catalogue(edition: str = CURRENT_EDITION) -> Catalogue:
    if edition not in EDITIONS:
        raise RulesError(f"unknown catalogue edition {edition!r}; known: {', '.join(EDITIONS)}")
    meta = EDITIONS[edition]
    # The shipped file only (RULES_DIR does not replace the national catalogue); validated against
    # app/rules/schemas/hw_catalog.schema.yaml and check_catalogue_rows.
    return parse_catalogue(load_rule_file(meta.filename), meta, meta.filename)


def check_catalogue_rows(rows: list[dict[str, str]], where: str) -> Catalogue:
    """The semantic check of a catalogue CSV (app.rules.loader): its edition is found by file name."""
    name = Path(where).name
    meta = next((m for m in EDITIONS.values() if m.filename == name), None)
    if meta is None:
        raise RulesError.listing(
            where,
            [f"no catalogue edition is shipped as {name}; known: " + ", ".join(m.filename for m in EDITIONS.values())],
        )
    return parse_catalogue(rows, meta, where)


def category_of(code: str) -> str:
    """900-039-49 → HW49 (the category number is the code's last two digits)."""
    return f"HW{code[-2:]}"


# ---------------------------------------------------------------- disposal methods


@dataclass(frozen=True)
class Method:
    code: str
    kind: str  # utilisation | disposal
    zh: str
    en: str
    landfill: bool


def parse_methods(data: dict[str, Any], where: str) -> dict[str, Method]:
    problems: list[str] = []
    methods: dict[str, Method] = {}
    raw = data.get("methods")
    if not isinstance(raw, list) or not raw:
        raise RulesError.listing(where, ["methods: a non-empty list is required"])
    for i, item in enumerate(raw):
        place = f"methods[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{place}: expected a mapping")
            continue
        code = item.get("code")
        if not isinstance(code, str) or not re.fullmatch(r"[RCD]\d{1,2}", code):
            problems.append(f"{place}.code: {code!r} is not a method code like R7, C1 or D10")
            continue
        if code in methods:
            problems.append(f"{place}.code: {code} appears twice")
        if item.get("kind") not in ("utilisation", "disposal"):
            problems.append(f"{place}.kind: utilisation or disposal")
        for lang in ("zh", "en"):
            if not isinstance(item.get(lang), str) or not item.get(lang):
                problems.append(f"{place}.{lang}: a name is required")
        # (a wrong kind is a problem above: these methods are then never returned)
        methods[code] = Method(
            code, str(item.get("kind")), item.get("zh", ""), item.get("en", ""), bool(item.get("landfill", False))
        )
    if not any(m.landfill for m in methods.values()):
        problems.append("no method is marked landfill: true (D1)")
    if problems:
        raise RulesError.listing(where, problems)
    return methods


@lru_cache(maxsize=4)
def _methods_cached(path: str, mtime: float, override_dir: str | None) -> dict[str, Method]:
    # load_rule_file validates against app/rules/schemas/disposal_methods.schema.yaml and parse_methods.
    return parse_methods(load_rule_file(METHODS_FILE, override_dir), path)


def load_methods(override_dir: str | None = None) -> dict[str, Method]:
    path = rules_path(METHODS_FILE, override_dir)
    return _methods_cached(str(path), path.stat().st_mtime, override_dir)


# ---------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class LedgerRules:
    version: str
    quantity_tolerance: float
    receipt_working_days: int
    paper_entry_working_days: int
    waste_carbon_codes: tuple[str, ...]
    min_removed_to_filled_ratio: float
    storage_limit_days: int
    max_on_site_kg: float
    min_received_to_shipped_ratio: float
    default_period_days: int


def parse_ledger_rules(data: dict[str, Any], where: str) -> LedgerRules:
    problems: list[str] = []
    sections: dict[str, dict[str, Any]] = {}
    for key in ("manifest", "anomalies"):
        section = data.get(key)
        sections[key] = section if isinstance(section, dict) else {}

    def number(section: str, name: str, *, integer: bool = False, fraction: bool = False) -> Any:
        place = f"{section}.{name}"
        value = sections[section].get(name)
        ok = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and value >= 0
            and (not integer or (isinstance(value, int) and value >= 1))
            and (not fraction or 0 <= value <= 1)
        )
        if not ok:
            kind = (
                "a positive integer"
                if integer
                else "a fraction between 0 and 1"
                if fraction
                else "a non-negative number"
            )
            problems.append(f"{place}: {kind} is required, not {value!r}")
            return 0
        return value

    codes = data.get("waste_carbon_codes")
    if not isinstance(codes, list) or not codes:
        problems.append("waste_carbon_codes: a non-empty list is required")
        codes = []
    catalogue = load_catalogue()
    for code in codes:
        if code not in catalogue:
            problems.append(f"waste_carbon_codes: {code!r} is not in the catalogue")
    rules = LedgerRules(
        version=str(data.get("version") or ""),
        quantity_tolerance=number("manifest", "quantity_tolerance", fraction=True),
        receipt_working_days=number("manifest", "receipt_working_days", integer=True),
        paper_entry_working_days=number("manifest", "paper_entry_working_days", integer=True),
        waste_carbon_codes=tuple(codes),
        min_removed_to_filled_ratio=number("anomalies", "min_removed_to_filled_ratio", fraction=True),
        storage_limit_days=number("anomalies", "storage_limit_days", integer=True),
        max_on_site_kg=number("anomalies", "max_on_site_kg"),
        min_received_to_shipped_ratio=number("anomalies", "min_received_to_shipped_ratio", fraction=True),
        default_period_days=number("anomalies", "default_period_days", integer=True),
    )
    if not rules.version:
        problems.append("version: a non-empty string is required")
    if problems:
        raise RulesError.listing(where, problems)
    return rules


@lru_cache(maxsize=4)
def _ledger_rules_cached(path: str, mtime: float, override_dir: str | None) -> LedgerRules:
    # load_rule_file validates against app/rules/schemas/ledger_rules.schema.yaml and parse_ledger_rules.
    return parse_ledger_rules(load_rule_file(LEDGER_RULES_FILE, override_dir), path)


# override_dir: RULES_DIR (the same override folder as colour rules), passed by the ledger's wiring.
def load_ledger_rules(override_dir: str | None = None) -> LedgerRules:
    path = rules_path(LEDGER_RULES_FILE, override_dir)
    return _ledger_rules_cached(str(path), path.stat().st_mtime, override_dir)


def check_all(override_dir: str | None = None) -> None:
    """Load every ledger data file once, so that a broken file stops the start with its problems."""
    from app.ledger.calendar import load_calendar

    load_catalogue()
    load_methods(override_dir)
    load_ledger_rules(override_dir)
    load_calendar(override_dir)
