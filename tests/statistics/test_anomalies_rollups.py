"""The anomalies read from the enterprise-month roll-ups (app/statistics/services/anomalies.py) are
exactly those computed from the raw records (tests/statistics/raw_anomalies.py), for random fills,
ledger records, stock and manifests over fourteen months, for every regulator's jurisdiction and
for periods whose edges fall inside months; and the roll-ups stay equal to their recomputation."""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from app.accounts.services import Principal
from app.boxes.models import Fill
from app.extensions import db
from app.ledger.models import LedgerRecord, Manifest, ManifestLine, WasteStock
from app.statistics.services import anomalies, rollups
from tests import factories
from tests.statistics.raw_anomalies import raw_anomalies
from tests.web.builders import login

NOW = datetime(2026, 11, 20, 3, 30, tzinfo=UTC)


def _kg(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low * 1000, high * 1000)) / 1000


def _random_records(rng: random.Random, world) -> None:
    enterprises = [world.enterprise, world.other_enterprise]
    boxes = [factories.box(enterprises[i % 2], world.service, now=NOW - timedelta(days=500)) for i in range(4)]
    db.session.flush()
    for box in boxes:
        at = NOW - timedelta(days=rng.uniform(380, 430))
        for n in range(rng.randint(2, 9)):
            tie = n and rng.random() < 0.15  # two fills at the same moment: the tie-break decides
            at = at if tie else at + timedelta(days=rng.uniform(5, 70), seconds=rng.randint(0, 86399))
            db.session.add(
                Fill(
                    box_id=box.id,
                    # a replacement with no fill before it (data from before the checks) now and then
                    kind="replacement" if n or rng.random() < 0.3 else "initial",
                    filled_at=at,
                    mass_kg=_kg(rng, 1, 2500),
                    carbon_type="granular",
                    iodine_mg_g=900.0,
                    removed_waste_kg=_kg(rng, 0, 2600) if rng.random() > 0.2 else None,
                    replaced_overdue=rng.random() < 0.3,
                )
            )
    for i in range(rng.randint(3, 12)):
        at = NOW - timedelta(days=rng.uniform(0, 700))
        on_site = _kg(rng, 0, 300) if rng.random() < 0.6 else Decimal("0")
        db.session.add(
            LedgerRecord(
                batch_code=f"CS{rng.randrange(10**9):010d}{i}",
                stage="generation",
                enterprise_id=rng.choice(enterprises).id,
                waste_code="900-039-49",
                waste_name="废活性炭",
                category="HW49",
                catalogue_edition="2021",
                quantity_kg=on_site + _kg(rng, 0, 100),
                on_site_kg=on_site,
                available_kg=on_site,
                occurred_at=at,
                origin="manual",
            )
        )
    for org in enterprises:
        if rng.random() < 0.8:
            db.session.add(WasteStock(enterprise_id=org.id, waste_code="900-039-49", on_hand_kg=_kg(rng, 0, 8000)))
    for m in range(rng.randint(4, 16)):
        status = rng.choice(["in_transit", "received", "processed", "closed", "submitted"])
        picked = NOW - timedelta(days=rng.uniform(0, 420), seconds=rng.randint(0, 86399))
        received = status in ("received", "processed", "closed")
        manifest = Manifest(
            number=f"M{rng.randrange(10**9):09d}{m:04d}",
            status=status,
            consignor_id=rng.choice(enterprises).id,
            carrier_id=world.service.id,
            receiver_id=world.service.id,
            picked_up_at=None if status == "submitted" else picked,
            receipt_due_at=picked + timedelta(days=7),
            received_at=picked + timedelta(days=1) if received else None,
            processed_at=picked + timedelta(days=2) if status in ("processed", "closed") else None,
        )
        db.session.add(manifest)
        db.session.flush()
        for line_no in range(1, rng.randint(0, 3) + 1):  # now and then a manifest without lines
            quantity = _kg(rng, 1, 900)
            got = min(quantity, _kg(rng, 0, 900)) if received and rng.random() > 0.2 else None
            db.session.add(
                ManifestLine(
                    manifest_id=manifest.id,
                    line_no=line_no,
                    waste_code=("900-039-49", "900-041-49")[line_no % 2],
                    waste_name="废活性炭",
                    category="HW49",
                    hazard="T",
                    quantity_kg=quantity,
                    received_kg=got,
                    accepted_kg=got,
                    method_code="R7" if status in ("processed", "closed") and got is not None else None,
                )
            )
    db.session.commit()  # the roll-ups are written at the commit


def _periods(rng: random.Random) -> list[tuple[date | None, date | None]]:
    out: list[tuple[date | None, date | None]] = [(None, None), (date(2026, 1, 1), date(2026, 10, 31))]
    for _ in range(3):
        first = date(2025, 9, 1) + timedelta(days=rng.randint(0, 420))
        out.append((first, first + timedelta(days=rng.randint(0, 200))))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_anomalies_from_rollups_equal_the_raw_computation(app, world, seed):
    rng = random.Random(seed)
    _random_records(rng, world)
    assert rollups.verify(db.session()) == []
    actors = [Principal(user=world.users[k]) for k in ("reg_city", "reg_tt", "park", "op", "other")]
    compared = 0
    seen: set[str] = set()
    for start, end in _periods(rng):
        for actor in actors:
            for enterprise in (None, world.enterprise.id):
                if enterprise and actor.organization and actor.organization.id == world.other_enterprise.id:
                    continue  # not visible to it: 404 on both paths
                kw = {"enterprise": enterprise, "start": start, "end": end, "now": NOW}
                found = anomalies.anomalies(db.session, actor, **kw)
                assert found == raw_anomalies(db.session, actor, **kw)
                seen |= {a["code"] for a in found["items"]}
                compared += 1
    assert compared >= 40
    # the data are not trivially empty: every anomaly of a period or a state shows up somewhere
    assert {"carbon_missing", "received_short", "stored_too_long", "storage_over_limit"} <= seen, seen


def test_split_months_covers_the_period_once_with_whole_months_in_the_middle():
    since = datetime(2026, 1, 10, 16, tzinfo=UTC)  # 2026-01-11 00:00 Shanghai
    until = datetime(2026, 4, 3, 5, tzinfo=UTC)
    whole, edges = anomalies.split_months(since, until)
    assert [m.label for m in whole] == ["2026-02", "2026-03"]
    assert edges == [
        (since, datetime(2026, 1, 31, 16, tzinfo=UTC)),
        (datetime(2026, 3, 31, 16, tzinfo=UTC), until),
    ]
    whole, edges = anomalies.split_months(datetime(2025, 12, 31, 16, tzinfo=UTC), datetime(2026, 2, 28, 16, tzinfo=UTC))
    assert [m.label for m in whole] == ["2026-01", "2026-02"] and edges == []
    assert anomalies.split_months(until, since) == ([], [])


def test_the_dashboard_the_anomalies_page_and_the_api_show_the_raw_anomalies(app, world, api):
    _random_records(random.Random(0), world)
    want = {
        (a["enterprise_id"], a["code"])
        for a in raw_anomalies(db.session, Principal(user=world.users["reg_city"]))["items"]
    }
    assert {"carbon_missing", "received_short"} <= {code for _, code in want}, want
    r = api.get("/api/v1/anomalies", as_="reg_city")
    assert r.status_code == 200, r.get_json()
    assert {(a["enterprise_id"], a["code"]) for a in r.get_json()["items"]} == want
    client = login(app, "reg_city")
    listed = client.get("/oversight/anomalies").get_data(as_text=True)
    found = re.findall(r'data-anomaly="([a-z_]+)" data-enterprise="(\d+)"', listed)
    assert {(int(enterprise), code) for code, enterprise in found} == want
    dashboard = client.get("/").get_data(as_text=True)
    rows = re.findall(r'<tr data-anomaly="([a-z_]+)">.*?ledger\?enterprise=(\d+)', dashboard, re.S)
    assert {(int(enterprise), code) for code, enterprise in rows} == want


def test_the_dashboard_lists_the_first_anomalies_and_counts_them_all(app, world, api, monkeypatch):
    from app.web import pages

    _random_records(random.Random(0), world)
    total = len(raw_anomalies(db.session, Principal(user=world.users["reg_city"]))["items"])
    assert total > 2
    monkeypatch.setattr(pages, "DASHBOARD_ANOMALIES", 2)
    dashboard = login(app, "reg_city").get("/").get_data(as_text=True)
    assert len(re.findall(r'<tr data-anomaly="', dashboard)) == 2
    assert f'<span data-shown="anomalies">前 2 项，共 {total} 项</span>' in dashboard
    assert re.search(rf'data-count="anomalies">.*?<span class="tile-value">{total}<', dashboard)  # the tile counts all
    assert 'data-link="anomalies"' in dashboard  # the rest: on the anomalies page
