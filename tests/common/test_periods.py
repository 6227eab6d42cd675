"""The one period type of the statistics and the index (app.common.periods), and both APIs reading it alike."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.common.errors import InvalidInput
from app.common.periods import FIRST_YEAR, LAST_YEAR, PERIOD_RE, Period, invalid_message, month_of, months_until
from app.index import services as index_services
from app.statistics import services as statistics_services

YEARS = st.integers(min_value=FIRST_YEAR, max_value=LAST_YEAR)
PERIODS = st.one_of(
    st.builds(lambda y: Period("year", y), YEARS),
    st.builds(lambda y, q: Period("quarter", y, q), YEARS, st.integers(1, 4)),
    st.builds(lambda y, m: Period("month", y, m), YEARS, st.integers(1, 12)),
)


def full_width(text: str) -> str:
    """As a Chinese input method types it: ２０２５－Ｑ２."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# ---------------------------------------------------------------- the type


def test_the_three_kinds_and_their_bounds():
    q3 = Period.parse("2025-Q3")
    assert (q3.kind, q3.year, q3.number, q3.quarter, q3.is_quarter) == ("quarter", 2025, 3, 3, True)
    assert (q3.start, q3.end, q3.label) == (date(2025, 7, 1), date(2025, 10, 1), "2025-Q3")
    # Asia/Shanghai midnight is 16:00 UTC the day before
    assert q3.start_utc == datetime(2025, 6, 30, 16, tzinfo=UTC)
    december = Period.parse("2025-12")
    assert (december.kind, december.end, december.quarter) == ("month", date(2026, 1, 1), None)
    assert str(december) == "2025-12"
    year = Period.parse("2025")
    assert (year.kind, year.start, year.end, year.months) == ("year", date(2025, 1, 1), date(2026, 1, 1), 12)
    assert [m.label for m in q3.month_periods()] == ["2025-07", "2025-08", "2025-09"]


def test_previous_and_the_same_period_of_another_year():
    assert Period.parse("2025-Q1").previous() == Period("quarter", 2024, 4)
    assert Period.parse("2025-01").previous() == Period("month", 2024, 12)
    assert Period.parse("2025").previous() == Period("year", 2024)
    assert Period.parse("2025-Q2").same_period_in(2024).label == "2024-Q2"
    assert Period.parse("2025-07").same_period_in(2020).label == "2020-07"


@pytest.mark.parametrize(
    "text, label",
    [
        ("2025", "2025"),
        (" 2025-07\t", "2025-07"),
        ("2025-q3", "2025-Q3"),
        ("２０２５", "2025"),
        ("２０２５-Q２", "2025-Q2"),
        ("２０２５－ｑ２", "2025-Q2"),
        ("２０２５－０７", "2025-07"),
        ("\u30002025\u3000", "2025"),
    ],
)
def test_parse_normalises_with_nfkc_and_strips(text, label):
    assert Period.parse(text).label == label


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "  ",
        "2025-13",
        "2025-00",
        "2025-Q0",
        "2025-Q5",
        "2025-7",
        "25",
        "20250",
        "2025/07",
        "2025-07-01",
        "2025Q3",
        "Q3-2025",
        "July",
        "1999",
        "2101",
        "٢٠٢٥",
        "2025-Q3x",
        None,
        2025,
        2025.0,
        True,
        b"2025",
    ],
)
def test_parse_refuses_anything_else_with_one_message(bad):
    with pytest.raises(InvalidInput) as exc:
        Period.parse(bad)
    assert exc.value.errors == {"period": [invalid_message(bad)]}
    message = exc.value.errors["period"][0]
    assert "无效" in message and "is not a period" in message and "2025-Q3" in message


def test_the_field_is_the_callers():
    with pytest.raises(InvalidInput) as exc:
        Period.parse("x", field="from")
    assert list(exc.value.errors) == ["from"]


def test_a_period_that_cannot_exist_is_not_built():
    for kind, year, number in (("month", 2025, 13), ("quarter", 2025, 5), ("year", 2025, 2), ("week", 2025, 1)):
        with pytest.raises(ValueError):
            Period(kind, year, number)


def test_month_of_uses_the_shanghai_calendar_and_months_until_counts_back():
    assert month_of(datetime(2025, 6, 30, 16, tzinfo=UTC)).label == "2025-07"
    assert month_of(datetime(2025, 6, 30, 15, 59, tzinfo=UTC)).label == "2025-06"
    assert [m.label for m in months_until(Period.parse("2025"), 3)] == ["2025-10", "2025-11", "2025-12"]
    assert [m.label for m in months_until(Period.parse("2025-02"), 3)] == ["2024-12", "2025-01", "2025-02"]


@given(PERIODS)
def test_the_label_parses_back_also_typed_full_width(period):
    assert Period.parse(period.label) == period
    assert Period.parse(full_width(period.label)) == period
    assert Period.parse(f"  {period.label.lower()} ") == period


@given(PERIODS)
def test_periods_tile_the_calendar(period):
    assert period.start < period.end
    before = period.previous()
    if before.year >= FIRST_YEAR:
        assert before.end == period.start and before.kind == period.kind
    months = period.month_periods()
    assert len(months) == period.months and months[0].start == period.start and months[-1].end == period.end
    assert all(a.end == b.start for a, b in pairwise(months))
    assert period.contains(period.start_utc) and not period.contains(period.end_utc)
    assert not period.contains(period.start_utc - timedelta(microseconds=1))


@given(PERIODS, YEARS)
def test_the_same_period_of_another_year_keeps_kind_and_number(period, year):
    other = period.same_period_in(year)
    assert (other.kind, other.number, other.year) == (period.kind, period.number, year)
    assert other.label[4:] == period.label[4:]


@given(st.text(max_size=12))
def test_any_text_is_a_period_exactly_when_its_nfkc_form_matches(text):
    normal = unicodedata.normalize("NFKC", text).strip().upper()
    match = PERIOD_RE.match(normal)
    expected = match is not None and FIRST_YEAR <= int(match.group(1)) <= LAST_YEAR
    try:
        period = Period.parse(text)
    except InvalidInput as exc:
        assert not expected
        assert exc.errors == {"period": [invalid_message(text)]}
    else:
        assert expected and period.label == normal


# ---------------------------------------------------------------- both services read it


def test_statistics_and_index_parse_to_the_shared_type():
    assert (
        statistics_services.parse_period("２０２５-Q２")
        == index_services.parse_period("２０２５-Q２")
        == Period("quarter", 2025, 2)
    )
    assert statistics_services.Period is index_services.Period is Period


def test_the_index_takes_a_spreadsheet_number_as_the_year_and_refuses_months():
    assert index_services.parse_period(2025) == index_services.parse_period(2025.0) == Period("year", 2025)
    with pytest.raises(InvalidInput) as exc:
        index_services.parse_period("2025-07")
    assert "month" in exc.value.errors["period"][0] and "月份" in exc.value.errors["period"][0]
    with pytest.raises(InvalidInput) as exc:
        index_services.parse_period(2025.5)
    assert exc.value.errors == {"period": [invalid_message(2025.5)]}


# ---------------------------------------------------------------- through HTTP


def test_both_apis_accept_the_full_width_form(api, world):
    r = api.get("/api/v1/metrics?period=２０２５-Q２", as_="op")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["period"]["label"] == "2025-Q2"
    r = api.get("/api/v1/index/scores?period=２０２５-ｑ２", as_="reg_city")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["period"] == "2025-Q2" and r.get_json()["base_period"].endswith("-Q2")


@pytest.mark.parametrize("garbage", ["abc", "2025-13", "2025-Q5", "25", "2025/07", "٢٠٢٥", "1999", "2025-Q2x"])
def test_both_apis_refuse_the_same_garbage_with_422_and_one_message(api, world, garbage):
    answers = [
        api.get(url, query_string={"period": garbage}, as_=who)
        for url, who in (("/api/v1/metrics", "op"), ("/api/v1/index/scores", "reg_city"))
    ]
    for r in answers:
        assert r.status_code == 422 and r.mimetype == "application/problem+json", (r.request.path, r.get_json())
    assert answers[0].get_json()["errors"] == answers[1].get_json()["errors"] == {"period": [invalid_message(garbage)]}


def test_the_index_api_refuses_a_month_that_the_statistics_take(api, world):
    assert api.get("/api/v1/metrics?period=2025-07", as_="op").status_code == 200
    r = api.get("/api/v1/index/scores?period=2025-07", as_="reg_city")
    assert r.status_code == 422 and "year or quarter" in r.get_json()["errors"]["period"][0]
