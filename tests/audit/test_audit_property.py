"""Random sequences of manifest actions: the chain always verifies and stock never goes negative."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.extensions import db
from app.ledger.models import WasteStock
from tests.audit.builders import verify
from tests.ledger.builders import build_loop, manifest_body

ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["create", "cancel", "pickup", "receive", "process"]),
        st.integers(min_value=0, max_value=5),
        st.integers(min_value=1, max_value=1200),
    ),
    min_size=1,
    max_size=8,
)


def test_random_manifest_actions_keep_the_chain_verifying(app, world, api):
    loop = build_loop(world, api)
    base = manifest_body(loop)  # plain ids: verify() ends the session, the objects detach
    numbers: list[str] = []

    @given(actions=ACTIONS)
    @settings(max_examples=6, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(actions):
        for action, pick, amount in actions:
            number = numbers[pick % len(numbers)] if numbers else None
            if action == "create" or number is None:
                r = api.post(
                    "/api/v1/manifests",
                    {**base, "submit": True, "lines": [{**base["lines"][0], "quantity_kg": float(amount)}]},
                    as_="ent",
                )
                if r.status_code == 201:
                    numbers.append(r.get_json()["number"])
            elif action == "cancel":
                api.post(f"/api/v1/manifests/{number}/cancel", {}, as_="ent")
            elif action == "pickup":
                api.post(
                    f"/api/v1/manifests/{number}/pickup",
                    {"vehicle_plate": "浙J12345", "driver_name": "王师傅"},
                    as_="drv",
                )
            elif action == "receive":
                api.post(
                    f"/api/v1/manifests/{number}/receive",
                    {"lines": [{"line_no": 1, "received_kg": float(amount)}]},
                    as_="svc",
                )
            else:
                api.post(
                    f"/api/v1/manifests/{number}/process", {"lines": [{"line_no": 1, "method_code": "R7"}]}, as_="svc"
                )
        db.session.rollback()
        for stock in db.session.scalars(select(WasteStock)):
            assert stock.on_hand_kg >= 0 and stock.reserved_kg >= 0
            assert stock.reserved_kg <= stock.on_hand_kg
        result = verify(app)
        assert result.exit_code == 0, result.output

    run()
