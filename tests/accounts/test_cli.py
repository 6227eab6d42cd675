"""The operations contract's commands (product.md, "Operations contract")."""
from __future__ import annotations

from datetime import timedelta

from app.boxes.models import Box
from app.extensions import db
from tests import factories


def test_create_superuser_from_environment_and_prompt(app, monkeypatch, client):
    runner = app.test_cli_runner()
    monkeypatch.setenv("PASSWORD", "operator-pass-1")
    result = runner.invoke(args=["create-superuser", "ops"])
    assert result.exit_code == 0, result.output
    assert "operator ops created" in result.output
    r = client.post("/api/v1/auth/token", json={"username": "ops", "password": "operator-pass-1"})
    assert r.status_code == 201
    # Without PASSWORD it prompts (twice, to confirm); a short password is refused.
    monkeypatch.delenv("PASSWORD")
    result = runner.invoke(args=["create-superuser", "ops2"], input="short\nshort\n")
    assert result.exit_code != 0 and "8 characters" in result.output
    result = runner.invoke(args=["create-superuser", "ops2"], input="long-enough-9\nlong-enough-9\n")
    assert result.exit_code == 0, result.output
    token = client.post("/api/v1/auth/token", json={"username": "ops2", "password": "long-enough-9"}).get_json()["token"]
    assert client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_refresh_colours_command_sweeps_due_boxes(app, world, session, now):
    box = factories.box(world.enterprise, now=now - timedelta(days=30))
    from app.boxes import services as box_services

    box_services.record_fill(session, factories.op_principal(), box,
                             {"mass_kg": 2000.0, "iodine_mg_g": 900.0, "filled_at": now - timedelta(days=20)},
                             now=now - timedelta(days=20))
    session.commit()
    assert box.colour == "green"  # as evaluated 20 days ago
    result = app.test_cli_runner().invoke(args=["boxes", "refresh-colours"])
    assert result.exit_code == 0 and "1 boxes re-evaluated" in result.output
    db.session.expire_all()
    assert db.session.get(Box, box.id).colour == "red"
