"""Indicator 25 from the real statistics (app.statistics.services.county_metrics), end to end:
a manifest of waste carbon processed by regeneration (R7) in 天台县 → nothing landfilled → 100 %."""

from __future__ import annotations

import pytest

from app.common.timeutil import local_date, utcnow
from app.extensions import db
from app.index import services
from tests.ledger.builders import build_loop, new_manifest, walk_to


def test_indicator_25_from_the_park_statistics(api, world):
    from app.statistics.services import county_metrics

    year = str(local_date(utcnow()).year)
    assert services.indicator_25_value(db.session, "331023", year) is None  # nothing processed yet

    loop = build_loop(world, api, removed_kg=1800)
    number = new_manifest(api, loop, 1500, submit=True)["number"]
    walk_to(api, number, "closed")  # processed with R7 (regeneration): not landfill
    db.session.expire_all()

    metrics = county_metrics(db.session, "331023", year)
    assert metrics["processed_kg"] == pytest.approx(1500) and metrics["landfilled_kg"] == 0
    value = services.indicator_25_value(db.session, "331023", year)
    assert value == pytest.approx(100 * (1 - metrics["landfilled_kg"] / metrics["processed_kg"])) == 100
    assert services.indicator_25_value(db.session, "331081", year) is None  # 温岭: nothing processed

    result = api.get(f"/api/v1/index/scores?period={year}", as_="reg_city").get_json()
    counties = {c["county_code"]: c for c in result["counties"]}
    tiantai = next(i for i in counties["331023"]["indicators"] if i["number"] == 25)
    assert tiantai["value"] == 100 and tiantai["score"] == 4  # the only county with a value: full weight
    assert 25 in counties["331081"]["missing"] and 25 not in counties["331023"]["missing"]
