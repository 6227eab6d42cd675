"""The index definition as served: the tree with weights, directions, the quarterly rules and the problems found."""

from __future__ import annotations

from typing import Any

from app.index.definition import Definition, Indicator
from app.index.services.reference import COUNTY_NAMES, COUNTY_NAMES_EN


def definition_document(defn: Definition) -> dict[str, Any]:
    """The tree with weights, directions, the quarterly rules and the problems found when loading."""

    def indicator_doc(ind: Indicator) -> dict[str, Any]:
        return {
            "number": ind.number,
            "name": ind.name,
            "name_en": ind.name_en,
            "weight": ind.weight,
            "data_source": ind.data_source,
            "direction": ind.direction,
            "scoring": ind.scoring,
            "quarterly": ind.quarterly,
            "unit": ind.unit,
            "source": ind.source,
            "computation": ind.computation,
            "note": ind.note,
        }

    return {
        "version": defn.version,
        "source": defn.source,
        "total_weight": defn.total_weight,
        "max_score": defn.max_score,
        "counts": {
            "first_level": len(defn.first_level),
            "second_level": len(defn.second_level),
            "indicators": len(defn.indicators),
        },
        "first_level": [
            {
                "id": f.id,
                "name": f.name,
                "name_en": f.name_en,
                "weight": f.weight,
                "content": f.content,
                "second_level": [
                    {
                        "number": s.number,
                        "name": s.name,
                        "name_en": s.name_en,
                        "weight": s.weight,
                        "indicators": [indicator_doc(defn.indicators[n]) for n in s.indicators],
                    }
                    for s in (defn.second_level[n] for n in f.second_level)
                ],
            }
            for f in defn.first_level
        ],
        "quarterly_rules": {
            "same_period": "the value imported for that quarter",
            "previous_year": "the previous year's annual value (备注); quarterly imports are refused",
            "cumulative_year": "the sum of the year's quarters up to and including this one (年度累计得分); "
            "missing when any of them has no value",
        },
        "remarks": defn.remarks,
        "target": {"base_year": defn.target_base_year, "change_share": defn.target_change_share},
        "counties": [{"code": c, "name": n, "name_en": COUNTY_NAMES_EN[c]} for c, n in COUNTY_NAMES.items()],
        "problems": list(defn.problems),
    }
