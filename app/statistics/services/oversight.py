"""The regulator's dashboard figures (``/``, app/web/pages.py), one statement per card (issue 12).

Boxes per colour: for the whole city from the open colour spans (``rollup_colour_spans`` with no
end: one per box, since registration writes a box's first change, kept with every colour change
at its commit), not from ``boxes``, whose rows are wide (the stored evaluation) and, on a server
whose autovacuum has not yet set their visibility bits after the sweep's updates, are all read
for an "index-only" count; the spans are a few narrow pages. A county or park counts its boxes
(``GROUP BY boxes.colour`` within the box scope, an index range per enterprise): joining the
spans to them would read the same boxes again. tests/statistics/test_oversight.py proves both
equal to ``GROUP BY boxes.colour`` for every kind of reader.

No Flask: the caller passes the session and the acting principal.
"""

from __future__ import annotations

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.boxes.models import Box, Colour
from app.boxes.services.access import box_scope
from app.statistics.rollup_models import ColourSpan

COLOURS = tuple(str(c) for c in Colour.by_severity(descending=True))  # red first, as the page shows them


def box_colours(session: Session, actor: Principal) -> dict[str, int]:
    """Boxes ``actor`` may see per colour now, red first (every colour, 0 when none)."""
    scope = box_scope(actor)
    if scope is true():  # the whole city: the narrow spans alone, no join
        s = ColourSpan
        counted = select(s.colour, func.count()).where(s.ended_at.is_(None)).group_by(s.colour)
    else:
        counted = select(Box.colour, func.count()).where(scope).group_by(Box.colour)
    counts = {str(colour): int(n) for colour, n in session.execute(counted)}
    return {c: counts.get(c, 0) for c in COLOURS}
