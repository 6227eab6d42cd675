"""The statistics' part of ``flask demo generate``: the generator writes its rows in bulk (COPY),
past the ORM flushes the roll-ups follow, so once every other part has loaded, the roll-ups are
rebuilt from the raw records, a step (month, chunk of boxes) per transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.statistics.services import rollups

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.demo.generate import GenerateContext


def rebuild_rollups(session: Session, ctx: GenerateContext) -> None:
    steps = 0
    for _label, step in rollups.rebuild_steps(session):
        step()
        ctx.commit()
        steps += 1
    ctx.progress(f"statistics roll-ups rebuilt in {steps} steps")
