"""The states of boxes and fills, and THE definition of the colour codes (pure Python: the label
PDF, the colour engine, the pages and the statistics import them from here or from the models)."""

from __future__ import annotations

from enum import StrEnum


class Colour(StrEnum):
    """A box's colour code, THE definition: members in ascending severity (grey < green <
    yellow < red); the colour engine, pages, statistics and labels all take them from here."""

    GREY = "grey"  # not in service, or not enough known
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def zh(self) -> str:
        return COLOUR_ZH[self]

    @classmethod
    def by_severity(cls, descending: bool = False) -> tuple[Colour, ...]:
        return tuple(reversed(cls)) if descending else tuple(cls)


_SEVERITY = {c: i for i, c in enumerate(Colour)}
COLOURS = Colour.by_severity()  # ("grey", "green", "yellow", "red")
COLOUR_ZH = {Colour.GREY: "灰", Colour.GREEN: "绿", Colour.YELLOW: "黄", Colour.RED: "红"}


class BoxStatus(StrEnum):
    ACTIVE = "active"
    STOPPED = "stopped"
    DECOMMISSIONED = "decommissioned"


class FillKind(StrEnum):
    INITIAL = "initial"
    REPLACEMENT = "replacement"


BOX_STATUSES = tuple(BoxStatus)
