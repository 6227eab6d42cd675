"""The definition of the county synergy index (附件2), loaded from ``synergy_index.yaml``.

The table is transcribed as printed, so it must be checked rather than trusted. Two kinds of
findings, treated differently on purpose:

- structural errors (a duplicate number, a missing or non-positive weight, an unknown parent, an
  unknown direction, scoring method, quarterly rule or computation, remarks that disagree with the
  indicators) make the file unusable: :class:`~app.rules.RulesError` lists every one of them and the
  app does not start;
- weight mismatches between levels (the third-level weights of "3. 协同减排 (6)" add up to 5) are
  facts about the published table. They are kept in :attr:`Definition.problems`, shown by the
  definition endpoint and logged at start, and never corrected here: correcting them is the
  publisher's decision.

Over ~400 lines because the parser and its checks of the printed table belong together.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.rules import RulesError, load_rule_file, rules_path

FILE_NAME = "synergy_index.yaml"
DIRECTIONS = ("higher", "lower")
SCORING_METHODS = ("minmax",)
QUARTERLY_RULES = ("same_period", "previous_year", "cumulative_year")
SOURCES = ("import", "computed")
# Computations this system can perform (see app.index.services.COMPUTED).
COMPUTATIONS = ("hazardous_waste_non_landfill_share",)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Indicator:
    """A third-level indicator (三级指标): the unit that is imported and scored."""

    number: int
    name: str
    weight: float
    parent: int  # second-level number
    data_source: str
    direction: str  # higher | lower is better
    scoring: str = "minmax"
    quarterly: str = "same_period"
    unit: str | None = None
    source: str = "import"  # import | computed
    computation: str | None = None
    note: str | None = None
    name_en: str | None = None

    @property
    def computed(self) -> bool:
        return self.source == "computed"


@dataclass(frozen=True)
class SecondLevel:
    number: int
    name: str
    weight: float
    parent: str  # first-level id
    indicators: tuple[int, ...]
    name_en: str | None = None


@dataclass(frozen=True)
class FirstLevel:
    id: str
    name: str
    weight: float
    content: str  # 评价内容: 协同效果 / 协同路径 / 协同管理
    second_level: tuple[int, ...]
    name_en: str | None = None


@dataclass(frozen=True)
class Definition:
    version: str
    source: str
    total_weight: float
    first_level: tuple[FirstLevel, ...]
    second_level: dict[int, SecondLevel]
    indicators: dict[int, Indicator]
    remarks: str
    target_base_year: int | None
    target_change_share: float
    problems: tuple[str, ...] = field(default=())

    @property
    def max_score(self) -> float:
        """The best total a county can reach with the weights as printed (99 while 协同减排 sums to 5)."""
        return sum(i.weight for i in self.indicators.values())

    def first_of(self, indicator: Indicator) -> FirstLevel:
        parent = self.second_level[indicator.parent].parent
        return next(f for f in self.first_level if f.id == parent)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _same(a: float, b: float) -> bool:
    return abs(a - b) < 1e-9


def _fmt(value: float) -> str:
    return f"{value:g}"


def parse_definition(data: dict[str, Any], where: str = FILE_NAME) -> Definition:
    """Validate the raw YAML; raise :class:`RulesError` on structural errors, collect weight problems."""
    errors: list[str] = []
    problems: list[str] = []

    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        errors.append("version: a non-empty string is required")
    source = data.get("source")
    if not isinstance(source, str) or not source.strip():
        errors.append("source: a non-empty string is required")
    total_weight = data.get("total_weight", 100)
    if not _number(total_weight) or total_weight <= 0:
        errors.append("total_weight: a positive number is required")
        total_weight = 100

    def weight_of(raw: dict, place: str) -> float:
        if "weight" not in raw or raw.get("weight") is None:
            errors.append(f"{place}.weight: missing")
            return 0.0
        w = raw["weight"]
        if not _number(w) or w <= 0:
            errors.append(f"{place}.weight: a positive number is required, not {w!r}")
            return 0.0
        return float(w)

    def name_of(raw: dict, place: str) -> str:
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            errors.append(f"{place}.name: a non-empty name is required")
            return ""
        return name.strip()

    def name_en_of(raw: dict, place: str) -> str | None:
        name = raw.get("name_en")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            errors.append(f"{place}.name_en: a non-empty English name, or absent")
            return None
        return name.strip() if name else None

    def mapping_list(key: str) -> list:
        raw = data.get(key)
        if not isinstance(raw, list) or not raw:
            errors.append(f"{key}: a non-empty list is required")
            return []
        return raw

    # -- first level
    firsts: dict[str, dict[str, Any]] = {}
    for i, raw in enumerate(mapping_list("first_level")):
        place = f"first_level[{i}]"
        if not isinstance(raw, dict):
            errors.append(f"{place}: expected a mapping")
            continue
        fid = raw.get("id")
        if not isinstance(fid, str) or not fid:
            errors.append(f"{place}.id: a non-empty string is required")
            continue
        if fid in firsts:
            errors.append(f"{place}.id: first-level indicator {fid} appears twice")
            continue
        firsts[fid] = {
            "name": name_of(raw, place),
            "name_en": name_en_of(raw, place),
            "weight": weight_of(raw, place),
            "content": str(raw.get("content") or ""),
            "children": [],
        }

    def numbered(key: str, what: str, seen: dict):
        """The entries of list ``key`` with a positive, unique ``number``: (place, number, raw)."""
        for i, raw in enumerate(mapping_list(key)):
            place = f"{key}[{i}]"
            if not isinstance(raw, dict):
                errors.append(f"{place}: expected a mapping")
                continue
            number = raw.get("number")
            if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
                errors.append(f"{place}.number: a positive integer is required, not {number!r}")
                continue
            place = f"{what} {number}"
            if number in seen:
                errors.append(f"{place}: number {number} appears twice")
                continue
            yield place, number, raw

    def attach(place: str, number: int, raw: dict, parents: dict, what: str) -> Any:
        """The entry's parent, which lists it among its children (an unknown parent is an error)."""
        parent = raw.get("parent")
        if parent not in parents:
            errors.append(f"{place}.parent: unknown {what} {parent!r}")
        else:
            parents[parent]["children"].append(number)
        return parent

    # -- second level
    seconds: dict[int, dict[str, Any]] = {}
    for place, number, raw in numbered("second_level", "second_level", seconds):
        parent = attach(place, number, raw, firsts, "first-level indicator")
        seconds[number] = {
            "name": name_of(raw, place),
            "name_en": name_en_of(raw, place),
            "weight": weight_of(raw, place),
            "parent": parent,
            "children": [],
        }

    # -- third level
    indicators: dict[int, Indicator] = {}
    for place, number, raw in numbered("indicators", "indicator", indicators):
        parent = attach(place, number, raw, seconds, "second-level indicator")
        direction = raw.get("direction")
        if direction not in DIRECTIONS:
            errors.append(f"{place}.direction: one of {', '.join(DIRECTIONS)} is required, not {direction!r}")
        scoring = raw.get("scoring", "minmax")
        if scoring not in SCORING_METHODS:
            errors.append(f"{place}.scoring: unknown method {scoring!r}; known: {', '.join(SCORING_METHODS)}")
        quarterly = raw.get("quarterly", "same_period")
        if quarterly not in QUARTERLY_RULES:
            errors.append(f"{place}.quarterly: one of {', '.join(QUARTERLY_RULES)}, not {quarterly!r}")
        src = raw.get("source", "import")
        computation = raw.get("computation")
        if src not in SOURCES:
            errors.append(f"{place}.source: import or computed, not {src!r}")
        elif src == "computed" and computation not in COMPUTATIONS:
            errors.append(f"{place}.computation: unknown computation {computation!r}; known: {', '.join(COMPUTATIONS)}")
        elif src == "import" and computation is not None:
            errors.append(f"{place}.computation: only computed indicators name a computation")
        data_source = raw.get("data_source")
        if not isinstance(data_source, str) or not data_source.strip():
            errors.append(f"{place}.data_source: the department named by the table is required")
            data_source = ""
        unit = raw.get("unit")
        if unit is not None and not isinstance(unit, str):
            errors.append(f"{place}.unit: a string or null")
            unit = None
        indicators[number] = Indicator(
            number=number,
            name=name_of(raw, place),
            weight=weight_of(raw, place),
            parent=parent,
            data_source=data_source.strip(),
            direction=direction,
            scoring=scoring,
            quarterly=quarterly,
            unit=unit or None,
            source=src,
            computation=computation,
            note=raw.get("note") or None,
            name_en=name_en_of(raw, place),
        )

    if indicators and sorted(indicators) != list(range(1, len(indicators) + 1)):
        gaps = sorted(set(range(1, max(indicators) + 1)) - set(indicators))
        errors.append(
            f"indicators: numbers must run 1..{len(indicators)} without gaps (missing: "
            f"{', '.join(map(str, gaps)) or '—'})"
        )
    for number, second in seconds.items():
        if not second["children"]:
            errors.append(f"second_level {number}: has no third-level indicators")
    for fid, first in firsts.items():
        if not first["children"]:
            errors.append(f"first_level {fid}: has no second-level indicators")

    # -- remarks (备注): the lists must agree with the indicators' quarterly rules
    remarks = data.get("remarks") or {}
    if not isinstance(remarks, dict):
        errors.append("remarks: expected a mapping {text, previous_year, cumulative_year}")
        remarks = {}
    for rule in ("previous_year", "cumulative_year"):
        listed = remarks.get(rule) or []
        if not isinstance(listed, list) or not all(isinstance(n, int) for n in listed):
            errors.append(f"remarks.{rule}: a list of indicator numbers")
            continue
        for n in listed:
            if n not in indicators:
                errors.append(f"remarks.{rule}: unknown indicator {n}")
        declared = sorted(n for n, ind in indicators.items() if ind.quarterly == rule)
        if sorted(set(listed)) != declared and all(n in indicators for n in listed):
            errors.append(
                f"remarks.{rule} lists {sorted(set(listed))} but the indicators with quarterly: {rule} are {declared}"
            )

    # -- the verbatim text of the 备注 must say what the lists say (an edit of one without the other
    #    would score quarters by rules nobody published)
    text = remarks.get("text")
    if text is not None and not isinstance(text, str):
        errors.append("remarks.text: the 备注 as printed (a string)")
    elif text:
        said: dict[str, set[int]] = {"previous_year": set(), "cumulative_year": set()}
        for sentence in re.split(r"[。.;；]", text):
            numbers = {int(n) for n in re.findall(r"指标\s*(\d+)", sentence)}
            if "前一年" in sentence:
                said["previous_year"] |= numbers
            elif "累计" in sentence:
                said["cumulative_year"] |= numbers
        for rule, numbers in said.items():
            listed = remarks.get(rule) or []
            if isinstance(listed, list) and all(isinstance(n, int) for n in listed) and numbers != set(listed):
                errors.append(
                    f"remarks.text names indicators {sorted(numbers)} for {rule} but remarks.{rule} lists "
                    f"{sorted(set(listed))}"
                )

    # -- the plan's target
    target = data.get("target") or {}
    base_year = target.get("base_year") if isinstance(target, dict) else None
    change_share = target.get("change_share", 0.10) if isinstance(target, dict) else 0.10
    if base_year is not None and (not isinstance(base_year, int) or not 2000 <= base_year <= 2100):
        errors.append(f"target.base_year: a year or null (the year before the period), not {base_year!r}")
        base_year = None
    if not _number(change_share):
        errors.append(f"target.change_share: a number (0.10 for +10 %), not {change_share!r}")
        change_share = 0.10

    if errors:
        raise RulesError.listing(where, errors)
    assert isinstance(version, str) and isinstance(source, str)  # else an error above was raised

    # -- weights per level: reported, never fixed
    for number, second in sorted(seconds.items()):
        children = second["children"]
        total = sum(indicators[n].weight for n in children)
        if not _same(total, second["weight"]):
            parts = " + ".join(_fmt(indicators[n].weight) for n in children)
            listed = "、".join(map(str, children))
            problems.append(
                f"二级指标 {number}. {second['name']} ({_fmt(second['weight'])})：三级指标权重合计 {_fmt(total)}"
                f"（{listed}：{parts}），不等于 {_fmt(second['weight'])}。"
                f"Its third-level weights add up to {_fmt(total)}, not {_fmt(second['weight'])}."
            )
    for fid, first in firsts.items():
        total = sum(seconds[n]["weight"] for n in first["children"])
        if not _same(total, first["weight"]):
            problems.append(
                f"一级指标 ({fid}) {first['name']} ({_fmt(first['weight'])})：二级指标权重合计 {_fmt(total)}，"
                f"不等于 {_fmt(first['weight'])}。Its second-level weights add up to {_fmt(total)}, "
                f"not {_fmt(first['weight'])}."
            )
    first_total = sum(f["weight"] for f in firsts.values())
    if not _same(first_total, total_weight):
        problems.append(
            f"一级指标权重合计 {_fmt(first_total)}，不等于 {_fmt(total_weight)}。"
            f"The first-level weights add up to {_fmt(first_total)}, not {_fmt(total_weight)}."
        )
    third_total = sum(i.weight for i in indicators.values())
    if not _same(third_total, total_weight):
        problems.append(
            f"三级指标权重合计 {_fmt(third_total)}，不等于 {_fmt(total_weight)}，满分按 {_fmt(third_total)} 计。"
            f"The third-level weights add up to {_fmt(third_total)}, not {_fmt(total_weight)}: "
            f"the best possible total score is {_fmt(third_total)}."
        )

    return Definition(
        version=version.strip(),
        source=source.strip(),
        total_weight=float(total_weight),
        first_level=tuple(
            FirstLevel(
                id=fid,
                name=f["name"],
                weight=f["weight"],
                content=f["content"],
                second_level=tuple(f["children"]),
                name_en=f["name_en"],
            )
            for fid, f in firsts.items()
        ),
        second_level={
            n: SecondLevel(
                number=n,
                name=s["name"],
                weight=s["weight"],
                parent=s["parent"],
                indicators=tuple(s["children"]),
                name_en=s["name_en"],
            )
            for n, s in seconds.items()
        },
        indicators=dict(sorted(indicators.items())),
        remarks=str(remarks.get("text") or ""),
        target_base_year=base_year,
        target_change_share=float(change_share),
        problems=tuple(problems),
    )


@lru_cache(maxsize=4)
def _definition_cached(path: str, mtime: float, override_dir: str | None = None) -> Definition:
    # load_rule_file validates against app/rules/schemas/synergy_index.schema.yaml and parse_definition.
    definition = parse_definition(load_rule_file(FILE_NAME, override_dir), path)
    for problem in definition.problems:
        log.warning("%s: %s", path, problem)
    return definition


def definition_path(override_dir: str | None = None) -> Path:
    return rules_path(FILE_NAME, override_dir)


def load_definition(override_dir: str | None = None) -> Definition:
    """The definition in ``$RULES_DIR/synergy_index.yaml`` if present, else the shipped one.

    Cached per file and modification time: an edited file is validated again on next use.
    Weight problems are logged as warnings once per load.
    """
    path = definition_path(override_dir)
    return _definition_cached(str(path), path.stat().st_mtime, override_dir)
