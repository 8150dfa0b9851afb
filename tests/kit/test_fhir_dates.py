"""FHIR date search values (onetrip.kit.fhir.date_value / date_search): prefixes, every precision, offsets,
comma (either) and repeated parameters (both); pure, no database."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onetrip.kit.clock import LOCAL_TZ
from onetrip.kit.errors import BadRequest
from onetrip.kit.fhir import DATE_AND, SEARCH_DATE_PREFIXES, check_params, date_search, date_value, parse_date

UTC = dt.UTC


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LOCAL_TZ).astimezone(UTC)


@pytest.mark.parametrize(("text", "start", "end", "precision"), [
    ("2026", local(2026, 1, 1), local(2027, 1, 1), "year"),
    ("2026-12", local(2026, 12, 1), local(2027, 1, 1), "month"),
    ("2026-02", local(2026, 2, 1), local(2026, 3, 1), "month"),
    ("2026-12-08", local(2026, 12, 8), local(2026, 12, 9), "day"),
    ("2026-12-08T08:00", local(2026, 12, 8, 8), local(2026, 12, 8, 8, 1), "minute"),
    ("2026-12-08T08:00:00+08:00", local(2026, 12, 8, 8), local(2026, 12, 8, 8, 0, 1), "second"),
    ("2026-12-08T00:00:00Z", dt.datetime(2026, 12, 8, tzinfo=UTC), dt.datetime(2026, 12, 8, 0, 0, 1, tzinfo=UTC),
     "second"),
    ("2026-12-08T08:00:00-05:00", dt.datetime(2026, 12, 8, 13, tzinfo=UTC),
     dt.datetime(2026, 12, 8, 13, 0, 1, tzinfo=UTC), "second"),
    ("2026-12-08T08:00:00.250+08:00", local(2026, 12, 8, 8, 0, 0, 250_000), local(2026, 12, 8, 8, 0, 0, 251_000),
     "millisecond"),
])
def test_every_precision_is_a_half_open_period(text, start, end, precision):
    for prefix in ("", "eq", "ge"):
        v = date_value(prefix + text, "date")
        assert (v.prefix, v.start, v.end, v.precision) == (prefix or "eq", start, end, precision)
        assert v.start.tzinfo is not None and v.start.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("bad", ["", "26", "2026-1", "2026-13", "2026-12-32", "2026-12-08T08", "xx2026",
                                 "2026-12-08 08:00", "ge", "２０２６", "2026/12/08", "1700-01-01", "9999-12-31",
                                 "2026-12-08T25:00", "gt2026-12-08T08:00:00+25:00"])
def test_malformed_values_are_a_400_naming_the_parameter(bad):
    with pytest.raises(BadRequest) as e:
        date_value(bad, "start")
    assert "start" in e.value.message


T0 = local(2026, 12, 8, 8)  # 08:00 local
SECOND = dt.timedelta(seconds=1)


@pytest.mark.parametrize(("query", "before", "at", "within", "after"), [
    # the value 2026-12-08T08:00:00+08:00 is the second [08:00:00, 08:00:01)
    ("eq2026-12-08T08:00:00+08:00", False, True, False, False),
    ("ne2026-12-08T08:00:00+08:00", True, False, True, True),
    ("ge2026-12-08T08:00:00+08:00", False, True, True, True),
    ("gt2026-12-08T08:00:00+08:00", False, False, True, True),
    ("sa2026-12-08T08:00:00+08:00", False, False, True, True),
    ("le2026-12-08T08:00:00+08:00", True, True, False, False),
    ("lt2026-12-08T08:00:00+08:00", True, False, False, False),
    ("eb2026-12-08T08:00:00+08:00", True, False, False, False),
])
def test_prefixes_on_a_point_in_time(query, before, at, within, after):
    s = date_search(query, "start")
    got = [s.matches(t) for t in (T0 - SECOND, T0, T0 + SECOND, T0 + dt.timedelta(hours=1))]
    assert got == [before, at, within, after]


def test_day_precision_prefixes():
    day = local(2026, 12, 8)
    inside, next_day, prev_day = day + dt.timedelta(hours=23, minutes=59), day + dt.timedelta(days=1), day - SECOND
    assert date_search("2026-12-08", "d").matches(inside) and not date_search("2026-12-08", "d").matches(next_day)
    assert date_search("gt2026-12-08", "d").matches(next_day) and not date_search("gt2026-12-08", "d").matches(inside)
    assert date_search("le2026-12-08", "d").matches(inside) and not date_search("le2026-12-08", "d").matches(next_day)
    assert date_search("lt2026-12-08", "d").matches(prev_day) and not date_search("lt2026-12-08", "d").matches(day)
    assert date_search("ge2026-12", "d").matches(day) and not date_search("ge2027", "d").matches(day)
    assert date_search("eq2026", "d").matches(day) and date_search("lt2027-01-01", "d").matches(day)


def test_comma_is_either_and_repeat_is_both():
    either = date_search("2026-12-08,2026-12-10", "date")
    assert either.matches(local(2026, 12, 8, 9)) and either.matches(local(2026, 12, 10, 9))
    assert not either.matches(local(2026, 12, 9, 9))
    both = date_search(f"ge2026-12-08T08:00{DATE_AND}lt2026-12-08T12:00", "date")
    assert both.matches(local(2026, 12, 8, 8)) and both.matches(local(2026, 12, 8, 11, 59))
    assert not both.matches(local(2026, 12, 8, 12)) and not both.matches(local(2026, 12, 8, 7, 59))
    assert both.bounds() == (local(2026, 12, 8, 8), local(2026, 12, 8, 12))
    assert date_search("ne2026-12-08", "date").bounds() == (None, None)


def test_ap_widens_by_a_tenth_of_the_distance_from_now():
    now = local(2026, 12, 1)
    s = date_search("ap2026-12-31", "date")  # 30 days away: ± 3 days
    assert s.matches(local(2027, 1, 3), now) and not s.matches(local(2027, 1, 5), now)
    assert s.matches(local(2026, 12, 28), now) and not s.matches(local(2026, 12, 26), now)
    assert date_search("ap2026-12-01", "date").matches(local(2026, 12, 2, 12), now)  # at least a day


def test_check_params_joins_repeated_date_parameters_only():
    raw = check_params([("date", "ge2026-12-08"), ("date", "lt2026-12-09"), ("status", "booked")],
                       {"date", "status"}, "Appointment", repeatable={"date"})
    assert raw["date"] == f"ge2026-12-08{DATE_AND}lt2026-12-09"
    with pytest.raises(BadRequest):
        check_params([("status", "a"), ("status", "b")], {"status"}, "Appointment", repeatable={"date"})
    with pytest.raises(BadRequest):  # callers that take one date value still refuse a repeat
        parse_date(raw["date"], "date")


def test_parse_date_unchanged():
    assert parse_date("ge1980-05", "birthdate") == ("ge-month", dt.date(1980, 5, 1))
    assert parse_date("1980-05-17", "birthdate") == ("eq", dt.date(1980, 5, 17))


# --- properties ---------------------------------------------------------------------------------------

instants = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1),
                        timezones=st.just(UTC))
offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))


def _text(t: dt.datetime, precision: str, tz: dt.tzinfo) -> str:
    lt = t.astimezone(LOCAL_TZ)
    if precision == "year":
        return f"{lt.year:04d}"
    if precision == "month":
        return f"{lt.year:04d}-{lt.month:02d}"
    if precision == "day":
        return lt.date().isoformat()
    return t.astimezone(tz).replace(microsecond=0).isoformat(timespec="seconds")


@given(t=instants, precision=st.sampled_from(["year", "month", "day", "second"]), tz=offsets,
       prefix=st.sampled_from([p for p in SEARCH_DATE_PREFIXES if p != "ap"]), probe=instants)
def test_prefixes_agree_with_the_period(t, precision, tz, prefix, probe):
    v = date_value(prefix + _text(t, precision, tz), "date")
    assert v.start < v.end
    if precision == "second":
        assert v.start == t.replace(microsecond=0) and v.end - v.start == SECOND
    else:
        assert v.start <= t < v.end  # the period holds the instant it was written from
    inside = v.start <= probe < v.end
    expected = {"eq": inside, "ne": not inside, "ge": probe >= v.start, "gt": probe >= v.end,
                "sa": probe >= v.end, "le": probe < v.end, "lt": probe < v.start, "eb": probe < v.start}[prefix]
    assert date_search(prefix + _text(t, precision, tz), "date").matches(probe) is expected


@given(a=instants, b=instants, probe=instants)
def test_a_repeated_parameter_is_the_intersection(a, b, probe):
    lo, hi = sorted((a, b))
    lo_text, hi_text = (x.replace(microsecond=0).isoformat() for x in (lo, hi))
    s = date_search(f"ge{lo_text}{DATE_AND}lt{hi_text}", "date")
    assert s.matches(probe) is (lo.replace(microsecond=0) <= probe < hi.replace(microsecond=0))
    b_lo, b_hi = s.bounds()
    assert s.matches(probe) <= (b_lo <= probe < b_hi)
