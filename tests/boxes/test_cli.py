"""The boxes commands of the operations contract (product.md, "Operations contract")."""

from __future__ import annotations

from datetime import timedelta

from app.boxes import services as box_services
from app.boxes.models import Box
from app.extensions import db
from tests import factories


def test_refresh_colours_command_sweeps_due_boxes(app, world, session, now):
    box = factories.box(world.enterprise, now=now - timedelta(days=30))
    box_services.record_fill(
        session,
        factories.op_principal(),
        box,
        {"mass_kg": 2000.0, "iodine_mg_g": 900.0, "filled_at": now - timedelta(days=20)},
        now=now - timedelta(days=20),
    )
    session.commit()
    assert box.colour == "green"  # as evaluated 20 days ago
    result = app.test_cli_runner().invoke(args=["boxes", "refresh-colours"])
    assert result.exit_code == 0 and "1 boxes re-evaluated" in result.output
    db.session.expire_all()
    assert db.session.get(Box, box.id).colour == "red"
