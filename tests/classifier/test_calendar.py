"""Business calendar: open hours, holidays, exceptions, exact fills and properties (POLICY §3)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from classifier.calendar import BusinessCalendar, parse_instant
from classifier.errors import CalendarError, InputError
from classifier.policy import CalendarConfig
from tests.conftest import BOGOTA, at


def assert_deadline(calendar, arrival: str, *, hours: float = 0, days: float = 0, due: str) -> None:
    amount = timedelta(hours=hours + 8 * days)
    assert calendar.add(at(arrival), amount).due == at(due)


# One row per sentence of POLICY §3; Wednesday 2026-11-25 is a regular business day.
@pytest.mark.parametrize(
    ("arrival", "hours", "due"),
    [
        ("2026-11-25 06:59", 1, "2026-11-25 08:00"),  # before opening: counts from 07:00
        ("2026-11-25 07:00", 1, "2026-11-25 08:00"),  # 07:00 is open
        ("2026-11-25 11:59", 1, "2026-11-25 14:59"),  # one minute before lunch, rest after
        ("2026-11-25 12:00", 1, "2026-11-25 15:00"),  # 12:00 is closed
        ("2026-11-25 13:30", 1, "2026-11-25 15:00"),  # lunch break
        ("2026-11-25 16:59", 1, "2026-11-26 07:59"),  # one minute before closing
        ("2026-11-25 17:00", 1, "2026-11-26 08:00"),  # 17:00 is closed
        ("2026-11-25 22:40", 1, "2026-11-26 08:00"),  # at night
        ("2026-11-28 10:00", 1, "2026-11-30 08:00"),  # Saturday
        ("2026-11-29 10:00", 1, "2026-11-30 08:00"),  # Sunday
        ("2026-11-13 16:00", 2, "2026-11-17 08:00"),  # Monday 2026-11-16 is a festivo (Cartagena)
        ("2026-07-10 16:30", 2, "2026-07-14 08:30"),  # Monday 13 July 2026: Ley 2578 de 2026
        ("2026-04-01 16:00", 3, "2026-04-06 09:00"),  # Holy Week: Maundy Thursday and Good Friday closed
        ("2026-12-24 16:00", 2, "2026-12-28 08:00"),  # Christmas Day closed
        ("2026-12-31 16:00", 2, "2027-01-04 08:00"),  # year end: 1 January closed
    ],
)
def test_arrivals_and_closed_days(calendar, arrival, hours, due):
    assert_deadline(calendar, arrival, hours=hours, due=due)


def test_exact_fill_stays_at_noon(calendar):
    assert_deadline(calendar, "2026-11-25 08:00", hours=4, due="2026-11-25 12:00")


def test_exact_fill_stays_at_closing_time(calendar):
    assert_deadline(calendar, "2026-11-25 14:00", hours=3, due="2026-11-25 17:00")
    assert_deadline(calendar, "2026-11-25 07:00", days=1, due="2026-11-25 17:00")


def test_fractional_days(calendar):
    assert_deadline(calendar, "2026-11-25 09:00", days=0.125, due="2026-11-25 10:00")
    assert_deadline(calendar, "2026-11-25 09:00", days=0.5, due="2026-11-25 15:00")
    assert_deadline(calendar, "2026-11-25 09:00", days=1.5, due="2026-11-26 15:00")


def test_fifteen_days_skip_weekends_and_holidays(calendar):
    # 15 business days from Tue 2026-12-01 09:00: 8 Dec and 25 Dec are holidays.
    assert_deadline(calendar, "2026-12-01 09:00", days=15, due="2026-12-23 09:00")


def test_ley_2578_holiday_is_known(calendar):
    assert calendar.holiday(date(2026, 7, 13)) is not None


@pytest.mark.parametrize("year", range(2024, 2036))
def test_easter_based_holidays_move_every_year(calendar, year):
    # Holy Thursday and Good Friday, and Ascension moved to the Monday 43 days after Easter (Ley 51 de 1983).
    from dateutil.easter import easter

    sunday = easter(year)
    for offset in (-3, -2, 43):
        assert calendar.holiday(sunday + timedelta(days=offset)) is not None, (year, offset)


@pytest.mark.parametrize(("fixed", "moved"), [("2026-01-06", "2026-01-12"), ("2027-11-11", "2027-11-15"),
                                              ("2028-08-15", "2028-08-21")])
def test_emiliani_holidays_move_to_monday(calendar, fixed, moved):
    assert calendar.holiday(date.fromisoformat(fixed)) is None
    assert calendar.holiday(date.fromisoformat(moved)) is not None


def _calendar(**calendar_keys) -> BusinessCalendar:
    base = {"weekly_hours": {"mon-fri": [["07:00", "12:00"], ["14:00", "17:00"]]}}
    return BusinessCalendar.from_config(CalendarConfig.model_validate({**base, **calendar_keys}))


def test_extended_hours_day_counts():
    cal = _calendar(extra_openings=[{"date": "2026-12-19", "opens": "08:00", "closes": "12:00", "source": "Aviso"}])
    # Friday 16:00 + 3 h: one hour Friday, then two on the extended Saturday morning.
    assert cal.add(at("2026-12-18 16:00"), timedelta(hours=3)).due == at("2026-12-19 10:00")
    assert cal.is_open(at("2026-12-19 08:00"))


def test_suspension_inside_regular_hours_does_not_count():
    cal = _calendar(suspensions=[{"date": "2026-11-25", "starts": "14:00", "ends": "17:00", "source": "Capacitación"}])
    assert cal.add(at("2026-11-25 11:00"), timedelta(hours=2)).due == at("2026-11-26 08:00")
    assert not cal.is_open(at("2026-11-25 15:00"))


def test_local_holiday_overrides():
    cal = _calendar(holidays={"country": "CO", "add": [{"date": "2026-11-25", "name": "Día de la empresa",
                                                        "source": "Aviso"}],
                              "remove": [{"date": "2026-11-16", "source": "Prueba"}]})
    assert cal.add(at("2026-11-24 16:00"), timedelta(hours=2)).due == at("2026-11-26 08:00")
    assert cal.is_open(at("2026-11-16 09:00"))


def test_long_suspension_fails_clearly_instead_of_looping():
    suspensions = [{"date": (date(2027, 1, 1) + timedelta(days=i)).isoformat(), "starts": "00:00", "ends": "24:00",
                    "source": "Cierre"} for i in range(400)]
    cal = _calendar(suspensions=suspensions, horizon_days=370)
    with pytest.raises(CalendarError, match="no hay tiempo hábil de atención en los 370 días"):
        cal.add(at("2027-01-01 09:00"), timedelta(hours=1))
    with pytest.raises(CalendarError, match="no hay tiempo hábil de atención"):
        cal.next_opening(at("2027-01-01 09:00"))


def test_naive_timestamp_is_rejected_with_a_clear_error(calendar):
    with pytest.raises(InputError, match="no lleva zona horaria"):
        calendar.add(datetime(2026, 11, 25, 9, 0), timedelta(hours=1))
    with pytest.raises(InputError, match="no lleva zona horaria"):
        parse_instant("2026-11-25T09:00:00")


def test_results_are_in_bogota_with_offset(calendar):
    due = calendar.add(datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc), timedelta(hours=1)).due
    assert due.utcoffset() == timedelta(hours=-5)
    assert due == at("2026-11-25 10:00")


def test_next_opening_and_between(calendar):
    assert calendar.next_opening(at("2026-11-25 12:30")) == at("2026-11-25 14:00")
    assert calendar.next_opening(at("2026-11-25 08:00")) == at("2026-11-25 08:00")
    assert calendar.between(at("2026-11-25 07:00"), at("2026-11-26 07:00")) == timedelta(hours=8)
    assert calendar.between(at("2026-11-27 16:00"), at("2026-11-30 08:00")) == timedelta(hours=2)


def test_deadline_explains_counted_segments(calendar):
    deadline = calendar.add(at("2026-11-27 16:30"), timedelta(hours=4))
    spans = [(s.start.strftime("%Y-%m-%d %H:%M"), s.end.strftime("%H:%M")) for s in deadline.counted]
    assert spans == [("2026-11-27 16:30", "17:00"), ("2026-11-30 07:00", "10:30")]


# ------------------------------------------------------------------ properties

instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)).map(
    lambda d: d.replace(tzinfo=BOGOTA)
)
amounts = st.integers(min_value=1, max_value=15 * 8 * 60).map(lambda m: timedelta(minutes=m))


def _open_or_closing(cal: BusinessCalendar, moment: datetime) -> bool:
    if cal.is_open(moment):
        return True
    just_before = moment - timedelta(microseconds=1)
    return cal.is_open(just_before)  # exactly at a closing time


@hsettings(max_examples=300, deadline=None)
@given(arrival=instants, amount=amounts)
def test_deadline_never_before_arrival_and_in_open_time(calendar, arrival, amount):
    due = calendar.add(arrival, amount).due
    assert due > arrival
    assert _open_or_closing(calendar, due)
    assert calendar.between(arrival, due) == amount


@hsettings(max_examples=200, deadline=None)
@given(arrival=instants, later=st.integers(min_value=0, max_value=10 * 24 * 60), amount=amounts)
def test_deadline_grows_with_arrival(calendar, arrival, later, amount):
    assert calendar.add(arrival, amount).due <= calendar.add(arrival + timedelta(minutes=later), amount).due


@hsettings(max_examples=200, deadline=None)
@given(arrival=instants, amount=amounts, extra=st.integers(min_value=0, max_value=5000))
def test_deadline_grows_with_amount(calendar, arrival, amount, extra):
    assert calendar.add(arrival, amount).due <= calendar.add(arrival, amount + timedelta(minutes=extra)).due


# ------------------------------------------------------------------ independent implementation

def test_agrees_with_pandas_business_hours_on_random_arrivals(calendar):
    pd = pytest.importorskip("pandas")
    years = range(2025, 2029)
    holiday_days = sorted(d for y in years for d in calendar.holidays_in(y))
    offset_hour = pd.offsets.CustomBusinessHour(start=["07:00", "14:00"], end=["12:00", "17:00"],
                                                holidays=holiday_days)
    rng = random.Random(2578)
    checked = 0
    for _ in range(3000):
        arrival = datetime(2025, 1, 1) + timedelta(minutes=rng.randrange(0, 4 * 365 * 24 * 60 - 60 * 24 * 40))
        hours = rng.choice([1, 4, 8, 16, 40, 80, 120])
        ours = calendar.add(arrival.replace(tzinfo=BOGOTA), timedelta(hours=hours)).due.replace(tzinfo=None)
        theirs = (pd.Timestamp(arrival) + offset_hour * hours).to_pydatetime()
        if ours != theirs:
            # pandas moves an exact fill to the next opening; POLICY §3 keeps it at the closing time.
            closing = ours.replace(tzinfo=BOGOTA)
            assert not calendar.is_open(closing) and calendar.is_open(closing - timedelta(microseconds=1))
            assert calendar.next_opening(closing).replace(tzinfo=None) == theirs, (arrival, hours, ours, theirs)
        checked += 1
    assert checked == 3000
