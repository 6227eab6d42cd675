"""The fast ingest path: its checks agree with the per-item error report, bodies JSON parsers
disagree about, batches that are partly stored already, chunked inserts, optional fields,
the breakthrough streak across batches, and the stored forms of timestamps."""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.dialects.sqlite import DATETIME
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect

from app.extensions import db
from app.telemetry import services
from app.telemetry.integration import Point, SortedNeighbours, merge, rate_kg_h, total_kg
from app.telemetry.models import MEASURES, ReadingHour, SensorReading
from tests.telemetry.builders import RATE_KG_H, post_readings, reading, state_of, stored_count, utc_now

LATEST = datetime(2026, 6, 1, tzinfo=UTC)
CAP = 600.0

# ---------------------------------------------------------------- check_items (no database)

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 0.0, 1.0, 55.5, 99_999.0, -0.5]),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=1),
)
_timestamps = st.one_of(
    st.sampled_from(
        [
            "2026-03-01T10:15:00+08:00",
            "2026-03-01T02:15:00Z",
            "2026-03-01T10:15:00",
            "2026-03-01 10:15:00.250000+00:00",
            "1999-12-31T23:59:59Z",
            "2026-07-01T00:00:00Z",
            "0001-01-01T00:00:00+08:00",
            "0001-01-01T00:00:00",
            "2026-02-30T00:00:00Z",
            "yesterday",
            "2026-03-01",
            "",
            "20260301T101500+0800",
        ]
    ),
    st.floats(min_value=-1e20, max_value=1e20),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.booleans(),
    st.none(),
    st.just(float("nan")),
)
_codes = st.one_of(st.sampled_from(["23-4K7QXB", "  ", "", "x"]), st.none(), st.integers())
_field = st.sampled_from(["box_code", "ts", "running", *MEASURES, "colour"])


@st.composite
def _items(draw):
    item = {
        "box_code": "23-4K7QXB",
        "ts": "2026-03-01T10:15:00+08:00",
        "inlet_mg_m3": 100.0,
        "outlet_mg_m3": 20.0,
        "airflow_m3_h": 5000.0,
        "pressure_drop_pa": 800.0,
        "inlet_temp_c": 30.0,
        "bed_temp_c": 30.0,
        "rh_pct": 50.0,
        "running": True,
    }
    for name in draw(st.lists(_field, max_size=4, unique=True)):
        action = draw(st.sampled_from(["drop", "set"]))
        if action == "drop":
            item.pop(name, None)
        elif name == "ts":
            item[name] = draw(_timestamps)
        elif name == "box_code":
            item[name] = draw(_codes)
        else:
            item[name] = draw(_values)
    return item


@settings(max_examples=400, deadline=None)
@given(items=st.lists(st.one_of(_items(), st.integers(), st.text(max_size=2)), max_size=8), sqlite=st.booleans())
def test_the_fast_checks_accept_exactly_what_the_error_report_finds_nothing_wrong_with(items, sqlite):
    rows, rejected = services.check_items(items, LATEST, sqlite)
    by_index = {r["index"]: r for r in rejected}
    assert sorted([row[services.R_INDEX] for row in rows] + list(by_index)) == list(range(len(items)))
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            assert by_index[index]["errors"] == {"_item": ["expected an object"]}
            continue
        errors = services._item_errors(item, services._parse_ts(item.get("ts")), LATEST)
        if index in by_index:
            assert errors and by_index[index]["errors"] == errors
            assert by_index[index]["box_code"] == item.get("box_code")
    for row in rows:
        item = items[row[services.R_INDEX]]
        ts = services._parse_ts(item["ts"])
        assert row[services.R_TS] == ts and ts.tzinfo is UTC
        assert row[services.R_BOUND] == services.bind_ts(ts, sqlite)
        assert row[services.R_CODE] == item["box_code"]
        values = row[services.R_MEASURE : services.R_RUNNING]
        assert list(values) == [item.get(m) for m in MEASURES]
        assert row[services.R_RUNNING] is bool(item.get("running", True))


def test_bound_timestamps_are_what_sqlalchemy_stores():
    store = DATETIME().bind_processor(sqlite_dialect())
    for ts in (
        datetime(2026, 3, 1, 2, 15, tzinfo=UTC),
        datetime(2026, 3, 1, 2, 15, 7, 250, tzinfo=UTC),
        datetime(2026, 3, 1, 10, 15, tzinfo=timezone(timedelta(hours=8))),
    ):
        assert services.bind_ts(ts, True) == store(ts.astimezone(UTC).replace(tzinfo=None))
        assert services.bind_ts(ts, False) == ts and services.bind_ts(ts, False).tzinfo is UTC
    rows, _ = services.check_items(
        [
            {
                "box_code": "23-4K7QXB",
                "ts": "2026-03-01T10:59:59.5+08:00",
                "inlet_mg_m3": 1,
                "outlet_mg_m3": 0,
                "airflow_m3_h": 1,
            }
        ],
        LATEST,
        True,
    )
    assert rows[0][services.R_HOUR] == "2026-03-01 02:00:00.000000"


def test_merge_takes_plain_tuples_like_points():
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    points = [Point(t0 + timedelta(minutes=m), r) for m, r in ((0, 1.0), (5, 2.0), (30, 0.5), (31, 0.0))]
    as_points = merge(None, points, SortedNeighbours(points), CAP)
    as_tuples = merge(None, [tuple(p) for p in points], SortedNeighbours(points), CAP)
    assert as_tuples.delta_kg == as_points.delta_kg == pytest.approx(total_kg(points, CAP))
    assert as_tuples.by_hour == as_points.by_hour and as_tuples.covered_by_hour == as_points.covered_by_hour
    assert as_tuples.last == points[-1] and isinstance(as_tuples.last, Point)
    # Nothing newer than ``last``: ``last`` stays.
    assert merge(points[-1], [], SortedNeighbours(points), CAP).last == points[-1]


# ---------------------------------------------------------------- through HTTP (both databases)


def _headers(token):
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def test_numbers_only_the_standard_library_reads_are_rejected_item_by_item(api, world, sensor_box, gateway):
    now = utc_now()
    good = json.dumps(reading(sensor_box.code, now - timedelta(minutes=2)))
    nan = json.dumps(reading(sensor_box.code, now - timedelta(minutes=1))).replace("100.0", "NaN")
    huge = json.dumps(reading(sensor_box.code, now)).replace("100.0", str(2**70))
    r = api.client.post("/api/v1/readings", data=f"[{good}, {nan}, {huge}]", headers=_headers(gateway))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["accepted"], body["rejected"]) == (1, 2)
    assert [sorted(i["errors"]) for i in body["rejected_items"]] == [["inlet_mg_m3"], ["inlet_mg_m3"]]
    # Still malformed for both parsers: 400, a problem document.
    r = api.client.post("/api/v1/readings", data=b"[1, 2,]", headers=_headers(gateway))
    assert r.status_code == 400 and r.mimetype == "application/problem+json"
    assert r.get_json()["detail"].startswith("malformed JSON")


def test_a_chunked_body_over_the_limit_is_413(app, api, world, sensor_box, gateway):
    data = json.dumps([reading(sensor_box.code, utc_now())] * 40).encode()
    app.config["TELEMETRY_MAX_BODY_BYTES"] = len(data) - 1
    try:
        r = api.client.post(
            "/api/v1/readings",
            input_stream=io.BytesIO(data),
            headers={**_headers(gateway), "Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )
        assert r.status_code == 413 and r.mimetype == "application/problem+json"
        r = api.client.post("/api/v1/readings", data=data, headers=_headers(gateway))
        assert r.status_code == 413
    finally:
        del app.config["TELEMETRY_MAX_BODY_BYTES"]
    assert stored_count() == 0


def test_timestamps_beyond_the_calendar_are_an_item_error(api, world, sensor_box, gateway):
    now = utc_now()
    batch = [
        reading(sensor_box.code, "0001-01-01T00:00:00+08:00"),
        reading(sensor_box.code, "0001-01-01T00:00:00"),
        {**reading(sensor_box.code, "x"), "ts": 1e20},
        reading(sensor_box.code, now),
    ]
    body = post_readings(api, gateway, batch).get_json()
    assert (body["accepted"], body["rejected"]) == (1, 3), body
    assert all(list(i["errors"]) == ["ts"] for i in body["rejected_items"])


def test_one_instant_written_two_ways_in_one_batch_is_one_reading(api, world, sensor_box, gateway):
    t = utc_now() - timedelta(minutes=5)
    batch = [
        reading(sensor_box.code, t.strftime("%Y-%m-%dT%H:%M:%SZ")),
        reading(sensor_box.code, t.astimezone(timezone(timedelta(hours=8))).isoformat()),
        reading(sensor_box.code.lower(), (t + timedelta(hours=8)).replace(tzinfo=None).isoformat()),
    ]
    body = post_readings(api, gateway, batch).get_json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (1, 2, 0), body
    assert stored_count(sensor_box.id) == 1


def test_a_partly_stored_batch_stores_and_integrates_only_its_new_readings(api, world, sensor_box, gateway):
    now = utc_now()
    code = sensor_box.code
    first = [reading(code, now - timedelta(minutes=m)) for m in (40, 30, 20)]
    assert post_readings(api, gateway, first).get_json()["accepted"] == 3
    # Two already stored, one late (between stored ones), two newer; outlet 60 → 0.2 kg/h.
    second = first[:2] + [reading(code, now - timedelta(minutes=m), outlet_mg_m3=60.0) for m in (35, 10, 5)]
    body = post_readings(api, gateway, second).get_json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (3, 2, 0), body
    assert stored_count(sensor_box.id) == 6
    points = [Point(now - timedelta(minutes=m), RATE_KG_H) for m in (40, 30, 20)]
    points += [Point(now - timedelta(minutes=m), rate_kg_h(100, 60, 5000, True)) for m in (35, 10, 5)]
    state = state_of(sensor_box.id)
    assert state.adsorbed_kg == pytest.approx(total_kg(points, CAP), rel=1e-9)
    assert state.reading_count == 6 and state.latest_ts == now - timedelta(minutes=5)
    hours = db.session.scalars(select(ReadingHour).where(ReadingHour.box_id == sensor_box.id)).all()
    assert sum(h.count for h in hours) == 6
    assert sum(h.adsorbed_kg for h in hours) == pytest.approx(state.adsorbed_kg, rel=1e-9)
    assert sum(h.outlet_mg_m3_sum for h in hours) == pytest.approx(3 * 20.0 + 3 * 60.0)


def test_batches_over_a_thousand_readings_are_stored_in_chunks(api, world, sensor_box, gateway):
    now = utc_now()
    batch = [reading(sensor_box.code, now - timedelta(seconds=10 * s)) for s in range(2500)]
    body = post_readings(api, gateway, batch[500:1700]).get_json()  # all new: 1,000 + 200
    assert (body["accepted"], body["duplicates"]) == (1200, 0)
    body = post_readings(api, gateway, batch).get_json()  # stored ones in the first two chunks
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (1300, 1200, 0)
    assert stored_count(sensor_box.id) == 2500
    count = db.session.scalar(select(func.sum(ReadingHour.count)).where(ReadingHour.box_id == sensor_box.id))
    assert count == 2500
    state = state_of(sensor_box.id)
    assert state.reading_count == 2500 and state.integrated_count == 2500
    assert state.adsorbed_kg == pytest.approx(RATE_KG_H * 2499 * 10 / 3600, rel=1e-9)


def test_optional_fields_may_be_left_out(api, world, sensor_box, gateway):
    # Four readings within one hour, all in the past whatever the clock says.
    now = (utc_now() - timedelta(hours=1)).replace(minute=30, second=0, microsecond=0)
    base = {"box_code": sensor_box.code, "inlet_mg_m3": 100, "outlet_mg_m3": 20, "airflow_m3_h": 5000}
    batch = [
        {**base, "ts": (now - timedelta(minutes=20)).isoformat()},  # no optional field, no running
        {**base, "ts": (now - timedelta(minutes=15)).isoformat(), "pressure_drop_pa": 700, "running": 1},
        {**base, "ts": (now - timedelta(minutes=10)).isoformat(), "pressure_drop_pa": 900.0, "running": 0},
        {**base, "ts": (now - timedelta(minutes=5)).isoformat(), "running": 2},
    ]  # neither true nor false
    body = post_readings(api, gateway, batch).get_json()
    assert (body["accepted"], body["rejected"]) == (3, 1), body
    assert body["rejected_items"][0]["errors"] == {"running": ["true or false"]}
    stored = db.session.scalars(
        select(SensorReading).where(SensorReading.box_id == sensor_box.id).order_by(SensorReading.ts)
    ).all()
    assert [(r.running, r.pressure_drop_pa, r.rh_pct) for r in stored] == [
        (True, None, None),
        (True, 700, None),
        (False, 900, None),
    ]
    hour = db.session.scalars(select(ReadingHour).where(ReadingHour.box_id == sensor_box.id)).one()
    assert (hour.count, hour.running_count) == (3, 2)
    assert (hour.pressure_drop_pa_n, hour.pressure_drop_pa_sum) == (2, 1600)
    assert (hour.pressure_drop_pa_min, hour.pressure_drop_pa_max) == (700, 900)
    assert (hour.bed_temp_c_n, hour.bed_temp_c_min, hour.bed_temp_c_max) == (0, None, None)
    # A later batch adds to the same hour: sums add up, extremes widen, missing ones stay missing.
    body = post_readings(
        api,
        gateway,
        [{**base, "ts": (now - timedelta(minutes=1)).isoformat(), "pressure_drop_pa": 650, "bed_temp_c": 41.5}],
    ).get_json()
    assert body["accepted"] == 1
    db.session.expire_all()
    hour = db.session.scalars(select(ReadingHour).where(ReadingHour.box_id == sensor_box.id)).one()
    assert (hour.count, hour.pressure_drop_pa_n, hour.pressure_drop_pa_min, hour.pressure_drop_pa_max) == (
        4,
        3,
        650,
        900,
    )
    assert (hour.bed_temp_c_n, hour.bed_temp_c_min, hour.bed_temp_c_max) == (1, 41.5, 41.5)
    assert (hour.inlet_temp_c_n, hour.inlet_temp_c_min) == (0, None)


def test_the_breakthrough_streak_runs_across_batches(api, world, sensor_box, gateway):
    now = utc_now()
    code = sensor_box.code

    def send(*minutes_outlet):
        batch = [
            reading(code, now - timedelta(minutes=m), outlet_mg_m3=o, running=running)
            for m, o, running in minutes_outlet
        ]
        assert post_readings(api, gateway, batch).get_json()["accepted"] == len(batch)
        state = state_of(code_id)
        since = (now - state.breakthrough_since).total_seconds() / 60 if state.breakthrough_since else None
        return state.breakthrough_count, since

    code_id = sensor_box.id
    high, low = 75.0, 20.0  # the limit is 60 mg/m³
    assert send((20, low, True), (19, high, True), (18, high, True)) == (2, 19)
    assert send((17, high, True), (16, high, True)) == (4, 19)  # the stored streak goes on
    assert send((18.5, low, True)) == (4, 19)  # a late reading changes neither
    assert send((15, high, False), (14, high, True)) == (1, 14)  # a stopped fan ends it
    assert send((13, low, True)) == (0, None)
    assert send((12, high, True), (11, low, True), (10, high, True), (9, high, True)) == (2, 10)
    latest = state_of(code_id).latest
    assert latest == {"running": True, **{m: reading(code, now, outlet_mg_m3=high)[m] for m in MEASURES}}
    assert not any(isinstance(v, float) and math.isnan(v) for v in latest.values() if v is not None)


# ---------------------------------------------------------------- the typed decoder (no database)


@settings(max_examples=400, deadline=None)
@given(items=st.lists(_items(), max_size=6), wrapped=st.booleans(), sqlite=st.booleans())
def test_the_typed_decoder_gives_what_the_general_path_gives(items, wrapped, sqlite):
    from app.telemetry import wire

    body = json.dumps({"readings": items, "gateway": "gw-1"} if wrapped else items).encode()
    general = services.check_items(services.readings_of(wire.parse_json(body), 5000), LATEST, sqlite)
    decoded = wire.decode(body)
    fast = services.check_items(services.readings_of(decoded, 5000), LATEST, sqlite)
    assert fast == general
    if type(decoded) is wire.TypedReadings:
        # Taken only when every item is well typed and in range: what is left to reject is the
        # code's presence and the timestamp.
        assert all(set(r["errors"]) <= {"box_code", "ts"} for r in general[1])


def test_the_typed_decoder_takes_well_formed_batches_and_leaves_the_rest_to_the_general_path():
    from app.telemetry import wire

    item = {
        "box_code": "23-4K7QXB",
        "ts": "2026-03-01T10:15:00+08:00",
        "inlet_mg_m3": 100,
        "outlet_mg_m3": 20.0,
        "airflow_m3_h": 5000.0,
    }
    assert type(wire.decode(json.dumps([item]).encode())) is wire.TypedReadings
    assert type(wire.decode(json.dumps({"readings": [item, item]}).encode())) is wire.TypedReadings
    for bad in (
        {**item, "running": 1},
        {**item, "inlet_mg_m3": -1},
        {**item, "colour": "red"},
        {**item, "outlet_mg_m3": None},
        {**item, "ts": None},
        {**item, "inlet_mg_m3": True},
    ):
        assert type(wire.decode(json.dumps([item, bad]).encode())) is list
    assert wire.decode(b'{"readings": 5}') == {"readings": 5}
    with pytest.raises(services.DomainError, match="malformed JSON"):
        wire.decode(b"[1, 2,]")


# ---------------------------------------------------------------- the one-pass integration (no database)


@settings(max_examples=300, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=1, max_value=4 * 3600 * 10**6), min_size=1, max_size=12, unique=True),
    values=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=500),
            st.floats(min_value=0, max_value=500),
            st.floats(min_value=0, max_value=50_000),
            st.booleans(),
        ),
        min_size=12,
        max_size=12,
    ),
    with_last=st.booleans(),
)
def test_the_one_pass_integration_is_merge_to_the_bit(offsets, values, with_last):
    from app.telemetry.integration import epoch_us

    t0 = datetime(2026, 3, 1, 9, 59, 58, 123456, tzinfo=UTC)
    last = Point(t0, 1.25) if with_last else None
    rows = []
    for offset, (inlet, outlet, airflow, running) in zip(sorted(offsets), values, strict=False):
        ts = t0 + timedelta(microseconds=offset)
        rows.append(
            (0, "23-4K7QXB", ts, None, None, inlet, outlet, airflow, None, None, None, None, running, epoch_us(ts))
        )
    points = [(r[2], rate_kg_h(r[5], r[6], r[7], r[12])) for r in rows]
    stored = SortedNeighbours([Point(*p) for p in points] + ([last] if last else []))
    merged = merge(last, points, stored, CAP)
    assert services.integrate_in_order(last, rows, CAP) == (
        merged.delta_kg,
        merged.by_hour,
        merged.covered_by_hour,
        merged.last,
    )
    assert epoch_us(t0) == round(t0.timestamp() * 10**6)
