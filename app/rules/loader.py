"""The one loader of the rule files in ``app/data``: read, validate against a declared schema, check.

Each rule file has

- a schema beside this module (``schemas/<name>.schema.yaml``, JSON Schema Draft 2020-12): the keys
  (``additionalProperties: false``, so a misspelt key is refused instead of silently ignored), their
  types, ranges and enums, the required keys;
- semantic checks a schema cannot express, done by the domain's own parser (message placeholders,
  holiday ranges, index weights and parents, catalogue codes…), named here by ``module:function``
  and imported lazily (the domains import this package).

Every problem of a file is reported at once, each as ``file: key path: what is wrong``
(``colour_rules.yaml: rules[3].params.treshold: unknown key``). A parser's problem about a key the
schema already refused is left out, so one mistake is reported once.
"""

from __future__ import annotations

import csv
import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from app.rules import DATA_DIR, RulesError, rules_path

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


@dataclass(frozen=True)
class RuleFile:
    name: str
    schema: str  # file name under SCHEMA_DIR
    semantic: str | None  # "module:function"; function(data, where) raises RulesError(problems=[...])
    format: str = "yaml"  # yaml | csv
    # Lists whose items are named by their ``number`` in messages, as the parser names them:
    # list key → word ("indicators[24]" → "indicator 25").
    numbered: tuple[tuple[str, str], ...] = ()


RULE_FILES: dict[str, RuleFile] = {
    f.name: f
    for f in (
        RuleFile("colour_rules.yaml", "colour_rules.schema.yaml", "app.boxes.colour:parse_rules"),
        RuleFile("holidays.yaml", "holidays.schema.yaml", "app.ledger.calendar:parse_calendar"),
        RuleFile("disposal_methods.yaml", "disposal_methods.schema.yaml", "app.ledger.catalogue:parse_methods"),
        RuleFile("ledger_rules.yaml", "ledger_rules.schema.yaml", "app.ledger.catalogue:parse_ledger_rules"),
        RuleFile(
            "synergy_index.yaml",
            "synergy_index.schema.yaml",
            "app.index.definition:parse_definition",
            numbered=(("indicators", "indicator"), ("second_level", "second_level")),
        ),
        RuleFile("plausibility.yaml", "plausibility.schema.yaml", "app.common.limits:check_plausibility"),
        RuleFile("retention.yaml", "retention.schema.yaml", "app.telemetry.services.partitions:check_retention"),
        RuleFile(
            "hw-catalog-2021.csv", "hw_catalog.schema.yaml", "app.ledger.catalogue:check_catalogue_rows", format="csv"
        ),
    )
}
RULE_SUFFIXES = (".yaml", ".yml", ".csv")


# ---------------------------------------------------------------- reading


class _Loader(yaml.SafeLoader):
    """Safe YAML, dates kept as text (the schema and the parsers judge them), duplicate keys refused."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, (list, dict)):
            continue  # refused by the constructor below
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice in this mapping", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _plain(value: Any) -> Any:
    """JSON-like data: mapping keys as text (YAML reads ``2025:`` as a number)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _read(path: Path, fmt: str, where: str) -> Any:
    try:
        with path.open(encoding="utf-8", newline="" if fmt == "csv" else None) as fh:
            if fmt == "csv":
                return [{("" if k is None else k): v for k, v in row.items()} for row in csv.DictReader(fh)]
            return _plain(yaml.load(fh, Loader=_Loader))  # safe: _Loader is a SafeLoader subclass
    except (OSError, UnicodeDecodeError, csv.Error, yaml.YAMLError) as exc:
        raise RulesError(f"{where}: cannot read: {exc}") from exc


# ---------------------------------------------------------------- schema


@cache
def validator(schema_name: str) -> Draft202012Validator:
    with (SCHEMA_DIR / schema_name).open(encoding="utf-8") as fh:
        schema = yaml.load(fh, Loader=_Loader)  # safe: a SafeLoader subclass
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _path(parts: Iterable[Any], spec: RuleFile, data: Any) -> str:
    out, node, numbered = "", data, dict(spec.numbered)
    parts = list(parts)
    for i, part in enumerate(parts):
        node = _child(node, part)
        if isinstance(part, int):
            number = node.get("number") if isinstance(node, dict) else None
            if spec.format == "csv" and i == 0:
                out = f"line {part + 2}"  # line 1 is the header
            elif i == 1 and parts[0] in numbered and isinstance(number, int) and not isinstance(number, bool):
                out = f"{numbered[parts[0]]} {number}"
            else:
                out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _child(node: Any, part: Any) -> Any:
    try:
        return node[part]
    except (KeyError, IndexError, TypeError):
        return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _hint(error: ValidationError) -> str:
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    return f" ({description})" if description else ""


_TYPE_NAMES = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def _describe(error: ValidationError, spec: RuleFile, data: Any) -> list[tuple[str, str]]:
    """(key path, message) pairs for one schema error."""
    path = _path(error.absolute_path, spec, data)
    kind, value, instance = error.validator, error.validator_value, error.instance
    if "propertyNames" in error.relative_schema_path and isinstance(instance, str):
        return [
            (
                _join(path, instance),
                f"key {instance!r} does not match {value}{_hint(error)}"
                if kind == "pattern"
                else f"not a valid key: {error.message}",
            )
        ]
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties", {}))
        patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
        extra = [k for k in instance if k not in known and not any(p.search(k) for p in patterns)]
        hint = f"; known: {', '.join(sorted(known))}" if known else ""
        return [(_join(path, k), f"unknown key{hint}") for k in extra]
    if kind == "required" and isinstance(instance, dict):
        return [(_join(path, k), "required key missing") for k in value if k not in instance]
    if kind == "type":
        types: list[str] = value if isinstance(value, list) else [value]  # JSON Schema type names
        wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in types)
        return [(path, f"expected {wanted}, not {instance!r}{_hint(error)}")]
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {
            "minimum": "below the minimum",
            "maximum": "above the maximum",
            "exclusiveMinimum": "not above",
            "exclusiveMaximum": "not below",
        }[kind]
        return [(path, f"{instance!r} is {words} {value!r}{_hint(error)}")]
    if kind in ("enum", "const"):
        allowed = value if kind == "enum" else [value]
        return [(path, f"{instance!r} is not one of {', '.join(map(str, allowed))}")]
    if kind == "pattern":
        return [(path, f"{instance!r} does not match {value}{_hint(error)}")]
    if kind in ("minItems", "minProperties"):
        return [
            (path, f"at least {value} {'item' if kind == 'minItems' else 'entry'}{'s' if value != 1 else ''} required")
        ]
    if kind == "minLength":
        return [(path, "must not be empty")]
    if kind == "uniqueItems":
        return [(path, "the items must be unique")]
    return [(path, error.message)]


def _sort_key(error: ValidationError) -> tuple:
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path)


def schema_problems(name: str, data: Any) -> list[tuple[str, str]]:
    spec = RULE_FILES[name]
    out: list[tuple[str, str]] = []
    for error in sorted(validator(spec.schema).iter_errors(data), key=_sort_key):
        for item in _describe(error, spec, data):
            if item not in out:
                out.append(item)
    return out


# ---------------------------------------------------------------- semantic checks


def _semantic(spec: RuleFile) -> Callable[[Any, str], Any] | None:
    if spec.semantic is None:
        return None
    module, _, function = spec.semantic.partition(":")
    return getattr(importlib.import_module(module), function)


def _overlaps(problem: str, paths: list[str]) -> bool:
    """A parser's problem about a key the schema refused already, or about something inside it."""
    head = problem.split(": ", 1)[0]
    for path in paths:
        if not path:
            return True  # the whole file is refused by the schema
        if head == path or (head.startswith(path) and head[len(path)] in ".["):
            return True
    return False


def validate(name: str, data: Any, where: str | None = None) -> list[str]:
    """Every problem of ``data`` as rule file ``name``, each ``where: key path: message``."""
    where = where or name
    spec = RULE_FILES[name]
    structural = schema_problems(name, data)
    problems = [f"{where}: {p or 'top level'}: {m}" for p, m in structural]
    check = _semantic(spec)
    if check is not None:
        try:
            check(data, where)
        except RulesError as exc:
            paths = [p for p, _ in structural]
            problems += [f"{where}: {p}" for p in exc.problems if not (structural and _overlaps(p, paths))]
        except Exception:  # a parser may trip over data the schema already refused
            if not structural:
                raise
    return problems


# ---------------------------------------------------------------- the API


def _load(name: str, path: Path, where: str) -> Any:
    if name not in RULE_FILES:
        raise RulesError(f"{where}: not a rule file; known: {', '.join(RULE_FILES)}")
    data = _read(path, RULE_FILES[name].format, where)
    problems = validate(name, data, where)
    if problems:
        raise RulesError("\n".join(problems), problems)
    return data


def load_rule_file(name: str, rules_dir: str | Path | None = None) -> Any:
    """The validated plain data of rule file ``name``: ``rules_dir/name`` if present, else the shipped one.

    Raises :class:`RulesError` listing every problem of the file (``problems`` holds them one by one).
    """
    path = rules_path(name, str(rules_dir) if rules_dir else None)
    where = name if path == DATA_DIR / name else str(path)
    return _load(name, path, where)


def check_dir(path: str | Path) -> list[str]:
    """The problems of every rule file in folder ``path`` (empty: all valid).

    A YAML or CSV file whose name is not a rule file's is a problem too: in ``$RULES_DIR`` it would
    be silently ignored (``colour_rule.yaml`` would never replace ``colour_rules.yaml``).
    """
    folder = Path(path)
    if not folder.is_dir():
        return [f"{folder}: not a folder"]
    problems: list[str] = []
    for file in sorted(folder.iterdir()):
        if not file.is_file() or file.suffix not in RULE_SUFFIXES:
            continue
        where = str(file)
        if file.name not in RULE_FILES:
            problems.append(f"{where}: not a rule file; known: {', '.join(RULE_FILES)}")
            continue
        try:
            _load(file.name, file, where)
        except RulesError as exc:
            problems += exc.problems
    return problems


def rule_files_in(path: str | Path) -> list[str]:
    """The names of the rule files present in folder ``path``."""
    folder = Path(path)
    return sorted(f.name for f in folder.iterdir() if f.is_file() and f.name in RULE_FILES) if folder.is_dir() else []
