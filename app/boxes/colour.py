"""The four-colour engine: facts about a box → triggered rules → colour.

The engine knows nothing about where facts come from. The base facts (fill, design load,
iodine) are gathered here; other domains contribute *fact providers* (telemetry adds measured
load and sensor state, the ledger adds waste held on site), plugged in by the app's wiring
(:func:`app.common.wiring.build_wiring`), and *checks* for their rule codes, which the wiring
joins to the base checks here (:data:`BASE_CHECKS`) as the app's ``colour_checks``. The rules
loaded for an app carry that app's checks (:attr:`RuleSet.checks`): nothing is registered by
the side effect of an import.
A rule file (``colour_rules.yaml``) decides which checks run, at which level, with which
thresholds and messages, and which reasons a stronger one makes redundant (``supersedes``).

A little over ~400 lines because the rule parser, the facts and the evaluation are one engine read together.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from app.boxes.models import CARBON_TYPES, COLOURS, Colour
from app.rules import RulesError, load_rule_file, rules_path

LEVELS: dict[str, int] = {c: c.severity for c in Colour}  # the colours' order is defined once, by Colour
# The rules that say a box's carbon is spent (saturated, or past its predicted replacement date):
# a replacement made while one of them holds was late (Fill.replaced_overdue, the statistics).
SPENT_CARBON_RULES = ("saturation_full", "replacement_overdue")


@dataclass
class Finding:
    """What a check saw: the observed value, the threshold it crossed, and since when (if known)."""

    observed: Any
    threshold: Any
    since: datetime | None = None


@dataclass(frozen=True)
class Rule:
    code: str
    level: str
    params: dict[str, Any]
    zh: str
    en: str
    # Rules of the same kind this one implies (saturation 100 % implies 80 %): while this one
    # holds, their reasons are not listed.
    supersedes: tuple[str, ...] = ()


Check = Callable[[dict[str, Any], dict[str, Any]], "Finding | None"]


@dataclass(frozen=True)
class RuleSet:
    version: str
    min_iodine_mg_g: dict[str, float | None]
    rules: tuple[Rule, ...]
    # Hours of readings the 24-hour load window must hold for a measured-load prediction (measured_load).
    min_load_covered_h: float = 1.0
    # code → check, the app's (app.common.wiring.Wiring.colour_checks); every rule's code is in it.
    checks: Mapping[str, Check] = field(default_factory=lambda: MappingProxyType({}), compare=False)


@dataclass
class Evaluation:
    colour: str
    reasons: list[dict[str, Any]]
    saturation: float | None
    predicted_replacement_at: datetime | None
    saturation_basis: str | None  # "sensor" | "design"
    next_check_at: datetime | None
    since: datetime | None  # when the worst triggered condition began, if the checks know
    facts: dict[str, Any] = field(default_factory=dict)


# provider(session, boxes, facts_by_box_id, now) fills facts for a batch of boxes at once. The
# providers in use are the app's wiring (app.common.wiring.build_wiring), not a registry here.
FactProvider = Callable[[Any, list, dict[int, dict[str, Any]], datetime], None]


# ---------------------------------------------------------------- rule file

RULES_FILE = "colour_rules.yaml"
# What every rule's messages may use: the values of the check's Finding (see evaluate()).
MESSAGE_PLACEHOLDERS = ("observed", "threshold")


def message_problems(template: str) -> list[str]:
    """What is wrong with a zh/en message template: bad syntax or a placeholder no rule provides."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return [f"not a valid message template ({exc}); write {{{{ and }}}} for literal braces"]
    out = []
    for name in fields:
        base = name.split(".", 1)[0].split("[", 1)[0]
        if base not in MESSAGE_PLACEHOLDERS:
            out.append(f"unknown placeholder {{{name}}}; known: " + ", ".join(f"{{{p}}}" for p in MESSAGE_PLACEHOLDERS))
    return out


def parse_rules(data: dict, where: str = "colour_rules.yaml", checks: Mapping[str, Check] | None = None) -> RuleSet:
    """The rule set of a colour rule file, its rules bound to ``checks`` (by default the checks
    the shipped app wires: :func:`app.common.wiring.colour_checks`); every problem at once."""
    if checks is None:
        from app.common.wiring import colour_checks

        checks = colour_checks()
    problems: list[str] = []
    version = data.get("version")
    if not isinstance(version, str) or not version:
        problems.append("version: a non-empty string is required")
    iodine = data.get("min_iodine_mg_g") or {}
    if not isinstance(iodine, dict):
        problems.append("min_iodine_mg_g: expected a mapping carbon type → mg/g")
        iodine = {}
    for carbon_type, value in iodine.items():
        if carbon_type not in CARBON_TYPES:
            problems.append(f"min_iodine_mg_g.{carbon_type}: unknown carbon type")
        elif value is not None and (not isinstance(value, (int, float)) or value <= 0):
            problems.append(f"min_iodine_mg_g.{carbon_type}: a positive number or null")
    covered = (data.get("measured_load") or {}).get("min_covered_hours", 1.0)
    if not isinstance(covered, (int, float)) or isinstance(covered, bool) or not 0 < covered <= 24:
        problems.append(f"measured_load.min_covered_hours: a number of hours in (0, 24], not {covered!r}")
        covered = 1.0
    rules: list[Rule] = []
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        problems.append("rules: a non-empty list is required")
        raw_rules = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        place = f"rules[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{place}: expected a mapping")
            continue
        code = raw.get("code")
        if code not in checks:
            problems.append(f"{place}.code: unknown check {code!r}; known: {', '.join(sorted(checks))}")
        if code in seen:
            problems.append(f"{place}.code: {code} appears twice")
        seen.add(str(code))
        level = raw.get("level")
        if level not in ("yellow", "red"):
            problems.append(f"{place}.level: yellow or red, not {level!r}")
        params = raw.get("params") or {}
        if not isinstance(params, dict):
            problems.append(f"{place}.params: a mapping of non-negative numbers")
            params = {}
        bad = [k for k, v in params.items() if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0]
        for key in bad:
            problems.append(
                f"{place}.params.{key}: a non-negative number, not {params[key]!r} "
                "(params: a mapping of non-negative numbers)"
            )
        if bad:
            params = {}
        for lang in ("zh", "en"):
            if not isinstance(raw.get(lang), str) or not raw.get(lang):
                problems.append(f"{place}.{lang}: a message is required")
            else:
                problems += [f"{place}.{lang}: {p}" for p in message_problems(raw[lang])]
        supersedes = raw.get("supersedes") or []
        if not isinstance(supersedes, list) or not all(isinstance(c, str) for c in supersedes):
            problems.append(f"{place}.supersedes: a list of rule codes")
            supersedes = []
        # (code and level are strings unless a problem above names them, and then nothing is returned)
        rule = Rule(
            code=str(code),
            level=str(level),
            params=dict(params),
            zh=raw.get("zh", ""),
            en=raw.get("en", ""),
            supersedes=tuple(supersedes),
        )
        rules.append(rule)
    for i, rule in enumerate(rules):
        for j, other in enumerate(rule.supersedes):
            if other == rule.code:
                problems.append(f"rules[{i}].supersedes[{j}]: a rule cannot supersede itself")
            elif other not in seen:
                problems.append(f"rules[{i}].supersedes[{j}]: {other!r} is not a rule of this file")
    if problems:
        raise RulesError.listing(where, problems)
    return RuleSet(
        version=str(version),
        min_iodine_mg_g=dict(iodine),
        rules=tuple(rules),
        min_load_covered_h=float(covered),
        checks=checks,
    )


@lru_cache(maxsize=8)
def _load_rules_cached(
    path: str, mtime: float, override_dir: str | None, checks: tuple[tuple[str, Check], ...]
) -> RuleSet:
    # load_rule_file validates against app/rules/schemas/colour_rules.schema.yaml and the default
    # checks (parse_rules); the rules are then bound to the checks of the app asking.
    return parse_rules(load_rule_file(RULES_FILE, override_dir), where=path, checks=MappingProxyType(dict(checks)))


def load_rules(override_dir: str | None = None, checks: Mapping[str, Check] | None = None) -> RuleSet:
    """The colour rules of ``override_dir`` (else the shipped file), bound to ``checks`` (by
    default the shipped app's, :func:`app.common.wiring.colour_checks`); cached by the file's
    path and modification time and by the checks."""
    if checks is None:
        from app.common.wiring import colour_checks

        checks = colour_checks()
    path = rules_path(RULES_FILE, override_dir)
    return _load_rules_cached(str(path), path.stat().st_mtime, override_dir, tuple(sorted(checks.items())))


# ---------------------------------------------------------------- base checks


def _fmt_pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def _saturation_full(facts, params):
    sat = facts.get("saturation")
    threshold = params.get("threshold", 1.0)
    if sat is not None and sat >= threshold:
        return Finding(_fmt_pct(sat), _fmt_pct(threshold), facts.get("saturation_since", {}).get(threshold))
    return None


def _saturation_high(facts, params):
    sat = facts.get("saturation")
    threshold = params.get("threshold", 0.8)
    if sat is not None and sat >= threshold:
        return Finding(_fmt_pct(sat), _fmt_pct(threshold), facts.get("saturation_since", {}).get(threshold))
    return None


def _date_str(value: datetime) -> str:
    from app.common.timeutil import to_local_str

    return to_local_str(value, "%Y-%m-%d")


def _replacement_overdue(facts, params):
    predicted = facts.get("predicted_replacement_at")
    if predicted is not None and facts["now"] >= predicted:
        return Finding(_date_str(facts["now"]), _date_str(predicted), predicted)
    return None


def _replacement_due_soon(facts, params):
    predicted = facts.get("predicted_replacement_at")
    days = params.get("days", 7)
    if predicted is not None and facts["now"] >= predicted - timedelta(days=days):
        return Finding(
            f"{(predicted - facts['now']).total_seconds() / 86400:.1f} d",
            _date_str(predicted),
            predicted - timedelta(days=days),
        )
    return None


def _iodine_below_minimum(facts, params):
    fill = facts.get("fill")
    minimum = facts["rules"].min_iodine_mg_g.get(fill.carbon_type) if fill else None
    if fill is not None and minimum is not None and fill.iodine_mg_g < minimum:
        return Finding(fill.iodine_mg_g, minimum, fill.filled_at)
    return None


# The engine's own checks; other domains add theirs through app.common.wiring (colour_checks).
BASE_CHECKS: Mapping[str, Check] = MappingProxyType(
    {
        "saturation_full": _saturation_full,
        "saturation_high": _saturation_high,
        "replacement_overdue": _replacement_overdue,
        "replacement_due_soon": _replacement_due_soon,
        "iodine_below_minimum": _iodine_below_minimum,
    }
)


# ---------------------------------------------------------------- evaluation


def derive_saturation(facts: dict[str, Any]) -> None:
    """Saturation and predicted replacement date.

    With sensor data (a provider set ``adsorbed_kg``) the integrated adsorbed mass is used and
    the prediction follows the measured load of the last 24 hours of readings (a provider sets
    ``load_kg_per_day``; absent when the window holds too little data, and then the design
    load is used: ``load_basis`` says which); otherwise the design load of formula T:
    T = M × S ÷ (C × 10⁻⁶ × Q × t).
    """
    box, fill, now = facts["box"], facts.get("fill"), facts["now"]
    if fill is None:
        return
    capacity = box.capacity_kg(fill.mass_kg)
    facts["capacity_kg"] = capacity
    design_load = box.design_daily_load_kg
    if facts.get("adsorbed_kg") is not None:
        adsorbed = facts["adsorbed_kg"]
        measured = facts.get("load_kg_per_day")
        load = measured if measured is not None else design_load
        facts["load_basis"] = "measured" if measured is not None else "design"
        facts["load_kg_per_day"] = load
        facts["saturation_basis"] = "sensor"
        saturation = adsorbed / capacity if capacity > 0 else math.inf
        remaining_days = max(capacity - adsorbed, 0.0) / load if load > 0 else math.inf
        predicted = now + timedelta(days=remaining_days) if math.isfinite(remaining_days) else None
        facts["saturation_since"] = {}
        rate, until = facts.get("open_interval") or (0.0, now)
        if rate > 0 and until > now and capacity > 0:
            # Saturation levels the open interval reaches before it closes: look again then.
            for rule in facts["rules"].rules:
                threshold = rule.params.get("threshold")
                if rule.code.startswith("saturation") and threshold is not None and adsorbed < threshold * capacity:
                    at = now + timedelta(hours=(threshold * capacity - adsorbed) / rate)
                    if at <= until:
                        facts.setdefault("next_check_candidates", []).append(at)
    else:
        facts["saturation_basis"] = "design"
        facts["load_basis"] = "design"
        facts["load_kg_per_day"] = design_load
        elapsed_days = max((now - fill.filled_at).total_seconds() / 86400, 0.0)
        adsorbed = design_load * elapsed_days
        saturation = adsorbed / capacity if capacity > 0 else math.inf
        cycle_days = capacity / design_load if design_load > 0 else math.inf
        predicted = fill.filled_at + timedelta(days=cycle_days) if math.isfinite(cycle_days) else None
        # Saturation grows linearly, so the moment it crossed each level is known exactly.
        facts["saturation_since"] = (
            {level: fill.filled_at + timedelta(days=cycle_days * level) for level in (0.8, 1.0)}
            if math.isfinite(cycle_days)
            else {}
        )
        for rule in facts["rules"].rules:
            threshold = rule.params.get("threshold")
            if rule.code.startswith("saturation") and threshold is not None and math.isfinite(cycle_days):
                facts["saturation_since"][threshold] = fill.filled_at + timedelta(days=cycle_days * threshold)
        # At the moment a level is crossed (a next check names it) the level is reached, though
        # the moment is rounded to the microsecond and the product may fall a hair short of it.
        reached = [level for level, at in facts["saturation_since"].items() if at <= now]
        if reached and saturation < max(reached):
            saturation = max(reached)
        if math.isfinite(cycle_days):
            candidates = facts.setdefault("next_check_candidates", [])
            candidates.extend(facts["saturation_since"].values())
            if predicted is not None:
                candidates.append(predicted)
                for rule in facts["rules"].rules:
                    if "days" in rule.params:
                        candidates.append(predicted - timedelta(days=rule.params["days"]))
    facts["adsorbed_kg"] = adsorbed
    facts["saturation"] = saturation
    facts["predicted_replacement_at"] = predicted


def evaluate(facts: dict[str, Any], rules: RuleSet) -> Evaluation:
    box, now = facts["box"], facts["now"]
    facts["rules"] = rules
    fill = facts.get("fill")
    if box.status != "active" or fill is None:
        why = "box_not_in_service" if box.status != "active" else "no_active_fill"
        zh = {"stopped": "已停用", "decommissioned": "已报废"}.get(box.status, "尚未装填活性炭")
        en = {"stopped": "stopped", "decommissioned": "decommissioned"}.get(box.status, "no carbon filled yet")
        reason = {
            "code": why,
            "level": "grey",
            "zh": zh,
            "en": en,
            "observed": box.status if fill else None,
            "threshold": None,
        }
        return Evaluation("grey", [reason], None, None, None, None, None, facts)
    derive_saturation(facts)
    reasons: list[dict[str, Any]] = []
    colour = "green"
    since_by_level: dict[str, list[datetime | None]] = {}
    for rule in rules.rules:
        finding = rules.checks[rule.code](facts, rule.params)
        if finding is None:
            continue
        values = {"observed": finding.observed, "threshold": finding.threshold}
        reasons.append(
            {
                "code": rule.code,
                "level": rule.level,
                "zh": rule.zh.format(**values),
                "en": rule.en.format(**values),
                "observed": finding.observed,
                "threshold": finding.threshold,
            }
        )
        since_by_level.setdefault(rule.level, []).append(finding.since)
        if LEVELS[rule.level] > LEVELS[colour]:
            colour = rule.level
    reasons = without_superseded(reasons, rules)
    reasons.sort(key=lambda r: -LEVELS[r["level"]])
    future = [t for t in facts.get("next_check_candidates", []) if t is not None and t > now]
    since_list = since_by_level.get(colour, [])
    known_since = [s for s in since_list if s is not None]
    since = min(known_since) if since_list and len(known_since) == len(since_list) else None
    return Evaluation(
        colour=colour,
        reasons=reasons,
        saturation=facts.get("saturation"),
        predicted_replacement_at=facts.get("predicted_replacement_at"),
        saturation_basis=facts.get("saturation_basis"),
        next_check_at=min(future) if future else None,
        since=since,
        facts=facts,
    )


def without_superseded(reasons: list[dict[str, Any]], rules: RuleSet) -> list[dict[str, Any]]:
    """The reasons but those a triggered stronger rule of the same kind implies (the rule file's
    ``supersedes``): "saturation 100 %" is listed without "reached the 80 % warning level"."""
    triggered = {r["code"] for r in reasons}
    implied = {code for rule in rules.rules if rule.code in triggered for code in rule.supersedes}
    return [r for r in reasons if r["code"] not in implied]


def worst(colours: Iterable[str]) -> str:
    return max(colours, key=lambda c: LEVELS[c], default="grey")


assert set(LEVELS) == set(COLOURS)
