"""Business calendar: open hours, Colombian holidays and announced exceptions, with O(log n) arithmetic.

Open time is indexed once per range of years as a prefix sum of open microseconds per day, so adding
fifteen business days costs the same as adding one hour: a bisection, then a walk over one day's
segments. Segments are half-open: 07:00 is open, 12:00 is closed.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from classifier.errors import CalendarError, Errors, InputError
from classifier.policy import CalendarConfig, parse_clock

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
BUSINESS_DAY_HOURS = 8  # POLICY §3: one business day is 8 business hours


@dataclass(frozen=True, slots=True)
class WeeklyInterval:
    """Recurring open hours on one weekday (Monday = 0)."""

    weekday: int
    opens: time
    closes: time


@dataclass(frozen=True, slots=True)
class Holiday:
    """A date with no service, and where the calendar learnt it."""

    date: date
    name: str
    source: str


@dataclass(frozen=True, slots=True)
class ExtraOpening:
    """Announced extended hours: adds open time on ``date``."""

    date: date
    opens: time
    closes: time
    source: str


@dataclass(frozen=True, slots=True)
class Suspension:
    """Announced suspension: removes open time on ``date``."""

    date: date
    starts: time
    ends: time
    source: str


@dataclass(frozen=True, slots=True)
class Segment:
    """Business time from ``start`` (included) to ``end`` (excluded); both tz-aware."""

    start: datetime
    end: datetime

    @property
    def duration(self) -> timedelta:
        return max(self.end - self.start, timedelta(0))


@dataclass(frozen=True, slots=True)
class Deadline:
    """When an amount of business time counted from ``start`` runs out."""

    start: datetime
    due: datetime
    amount: timedelta
    calendar: "BusinessCalendar" = field(repr=False, compare=False)

    @property
    def counted(self) -> list[Segment]:
        """The open segments counted, in order: the explanation shown to agents."""
        return self.calendar.segments_between(self.start, self.due)


EARLIEST_YEAR, LATEST_YEAR = 1990, 2200  # outside these, a timestamp is a mistake, not a message


def require_aware(value: datetime) -> datetime:
    """Reject naive timestamps (business time needs a UTC offset) and years no message can come from."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InputError(Errors.C202.format(value=value.isoformat()))
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise InputError(f"la fecha y hora {value.isoformat()} está fuera del rango admitido "
                         f"(años {EARLIEST_YEAR} a {LATEST_YEAR})")
    return value


def business_days(days: float) -> timedelta:
    """N business days are N × 8 business hours (POLICY §3, a decision)."""
    return timedelta(hours=BUSINESS_DAY_HOURS * days)


def _to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


@dataclass(frozen=True, slots=True)
class _Index:
    """Open segments per day for a range of dates, with prefix sums of open microseconds."""

    first: date
    days: int
    segments: tuple[tuple[tuple[int, int], ...], ...]  # per day: ((start_us, end_us), ...)
    cumulative: tuple[int, ...]  # cumulative[i] = open microseconds before day i; len = days + 1

    @property
    def last(self) -> date:
        return self.first + timedelta(days=self.days - 1)


class BusinessCalendar:
    """Weekly hours + extra openings − suspensions − holidays, in one time zone."""

    def __init__(
        self,
        *,
        time_zone: str,
        weekly: list[WeeklyInterval],
        holiday_country: str | None = "CO",
        holiday_subdivision: str | None = None,
        holiday_language: str | None = "es",
        added_holidays: list[Holiday] = (),
        removed_holidays: list[date] = (),
        extra_openings: list[ExtraOpening] = (),
        suspensions: list[Suspension] = (),
        horizon_days: int = 370,
    ):
        self.tz = ZoneInfo(time_zone)
        self.weekly = tuple(weekly)
        self.horizon_days = horizon_days
        self._by_weekday: dict[int, list[tuple[time, time]]] = {d: [] for d in range(7)}
        for w in self.weekly:
            self._by_weekday[w.weekday].append((w.opens, w.closes))
        self._country = holiday_country
        self._subdivision = holiday_subdivision
        self._language = holiday_language
        self._added = {h.date: h for h in added_holidays}
        self._removed = set(removed_holidays)
        self.extra_openings = tuple(sorted(extra_openings, key=lambda e: (e.date, e.opens)))
        self.suspensions = tuple(sorted(suspensions, key=lambda s: (s.date, s.starts)))
        self._holiday_cache: dict[int, dict[date, Holiday]] = {}
        self._lock = threading.Lock()
        self._index: _Index | None = None

    @classmethod
    def from_config(cls, config: CalendarConfig) -> "BusinessCalendar":
        """Build the calendar described by the ``calendar`` part of ``rules/policy.yaml``."""
        weekly = [
            WeeklyInterval(day, opens, closes)
            for day, intervals in config.weekly_intervals().items()
            for opens, closes in intervals
        ]
        src = "rules/policy.yaml"
        return cls(
            time_zone=config.time_zone,
            weekly=weekly,
            holiday_country=config.holidays.country,
            holiday_subdivision=config.holidays.subdivision,
            holiday_language=config.holidays.language,
            added_holidays=[Holiday(h.date, h.name, h.source or src) for h in config.holidays.add],
            removed_holidays=[h.date for h in config.holidays.remove],
            extra_openings=[
                ExtraOpening(e.date, parse_clock(e.opens), parse_clock(e.closes), e.source)
                for e in config.extra_openings
            ],
            suspensions=[
                Suspension(s.date, parse_clock(s.starts), parse_clock(s.ends), s.source) for s in config.suspensions
            ],
            horizon_days=config.horizon_days,
        )

    # ------------------------------------------------------------------ holidays and daily hours

    def holidays_in(self, year: int) -> dict[date, Holiday]:
        """Holidays of one year: the library's, plus local additions, minus local removals."""
        cached = self._holiday_cache.get(year)
        if cached is not None:
            return cached
        found: dict[date, Holiday] = {}
        if self._country:
            lib = holidays_lib.country_holidays(
                self._country, subdiv=self._subdivision, years=year, language=self._language
            )
            for day, name in lib.items():
                found[day] = Holiday(day, name, f"biblioteca holidays {holidays_lib.__version__} ({self._country})")
        for day, holiday in self._added.items():
            if day.year == year:
                found[day] = holiday
        for day in self._removed:
            found.pop(day, None)
        self._holiday_cache[year] = found
        return found

    def holiday(self, day: date) -> Holiday | None:
        return self.holidays_in(day.year).get(day)

    def day_hours(self, day: date) -> list[tuple[time, time]]:
        """Open intervals (local clock times) on ``day`` after holidays and exceptions."""
        intervals = [] if self.holiday(day) else list(self._by_weekday[day.weekday()])
        intervals += [(e.opens, e.closes) for e in self.extra_openings if e.date == day]
        intervals = _merge(intervals)
        for s in self.suspensions:
            if s.date == day:
                intervals = _subtract(intervals, s.starts, s.ends)
        return intervals

    def _local(self, day: date, clock: time) -> datetime:
        if clock == time.max:
            return datetime.combine(day + timedelta(days=1), time(0), self.tz)
        return datetime.combine(day, clock, self.tz)

    def _day_us(self, day: date) -> tuple[tuple[int, int], ...]:
        return tuple((_to_us(self._local(day, a)), _to_us(self._local(day, b))) for a, b in self.day_hours(day))

    # ------------------------------------------------------------------ index

    def _index_for(self, first: date, last: date) -> _Index:
        """An index covering at least [first, last], built or widened as needed (whole years)."""
        index = self._index
        if index is not None and index.first <= first and last <= index.last:
            return index
        with self._lock:
            index = self._index
            lo = date(first.year - 1, 1, 1)
            hi = date(last.year + 1, 12, 31)
            if index is not None:
                lo, hi = min(lo, index.first), max(hi, index.last)
            days = (hi - lo).days + 1
            segments = []
            cumulative = [0]
            for i in range(days):
                segs = self._day_us(lo + timedelta(days=i))
                segments.append(segs)
                cumulative.append(cumulative[-1] + sum(b - a for a, b in segs))
            self._index = _Index(lo, days, tuple(segments), tuple(cumulative))
            return self._index

    def _local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def _offset(self, index: _Index, day: date, us: int) -> int:
        """Open microseconds in the index before instant ``us`` (which falls on local ``day``)."""
        i = (day - index.first).days
        before = index.cumulative[i]
        for a, b in index.segments[i]:
            if us <= a:
                break
            before += min(us, b) - a
        return before

    def _locate(self, index: _Index, target: int, *, at_close: bool) -> int | None:
        """The instant where ``target`` open microseconds have elapsed in the index.

        With ``at_close`` an amount that exactly fills a segment ends at its closing time; without it the
        instant is the next opening (used to find where open time resumes).
        """
        cum = index.cumulative
        j = bisect_left(cum, target) if at_close else bisect_right(cum, target)
        if j > index.days:
            return None
        i = max(j - 1, 0)
        remaining = target - cum[i]
        for a, b in index.segments[i]:
            length = b - a
            if remaining < length or (at_close and remaining == length):
                return a + remaining
            remaining -= length
        return None

    def _from_us(self, us: int) -> datetime:
        return (_EPOCH + timedelta(microseconds=us)).astimezone(self.tz)

    # ------------------------------------------------------------------ public arithmetic

    def is_open(self, moment: datetime) -> bool:
        """True when ``moment`` falls inside open business time."""
        require_aware(moment)
        us = _to_us(moment)
        day = self._local_date(moment)
        index = self._index_for(day, day)
        return any(a <= us < b for a, b in index.segments[(day - index.first).days])

    def next_opening(self, moment: datetime) -> datetime:
        """``moment`` itself when open, else the next instant business time resumes."""
        return self.add_each(moment, (timedelta(0),))[0].due

    def add(self, start: datetime, amount: timedelta) -> Deadline:
        """The instant when ``amount`` of business time has passed since ``start``.

        An amount that exactly fills an open block ends at that block's closing time (POLICY §3); a zero
        amount ends at the next opening (``start`` itself when open).
        """
        return self.add_each(start, (amount,))[0]

    def add_each(self, start: datetime, amounts: Sequence[timedelta]) -> list[Deadline]:
        """``add`` for several amounts from one start, which is located in the calendar once."""
        require_aware(start)
        for amount in amounts:
            if amount < timedelta(0):
                raise InputError(Errors.C204.format(value=amount))
        day = self._local_date(start)
        horizon = day + timedelta(days=self.horizon_days)
        index = self._index_for(day, horizon)
        offset = self._offset(index, day, _to_us(start))
        out = []
        for amount in amounts:
            found = self._locate(index, offset + amount // _US, at_close=bool(amount))
            due = None if found is None else self._from_us(found)
            if due is None or due.date() > horizon:
                raise CalendarError(Errors.C201.format(days=self.horizon_days, start=start.isoformat()))
            out.append(Deadline(start, due, amount, self))
        return out

    def add_days(self, start: datetime, days: float) -> Deadline:
        """Add business days: N days are N × 8 business hours (POLICY §3, a decision)."""
        return self.add(start, business_days(days))

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time from ``start`` to ``end`` (negative when ``end`` comes first)."""
        require_aware(start)
        require_aware(end)
        a_day, b_day = self._local_date(start), self._local_date(end)
        index = self._index_for(min(a_day, b_day), max(a_day, b_day))
        delta = self._offset(index, b_day, _to_us(end)) - self._offset(index, a_day, _to_us(start))
        return timedelta(microseconds=delta)

    def segments_between(self, start: datetime, end: datetime) -> list[Segment]:
        """Open segments inside [start, end), day by day: the explanation of a deadline."""
        require_aware(start)
        require_aware(end)
        out: list[Segment] = []
        s_us, e_us = _to_us(start), _to_us(end)
        day, last = self._local_date(start), self._local_date(end)
        while day <= last:
            for a, b in self._day_us(day):
                lo, hi = max(a, s_us), min(b, e_us)
                if lo < hi:
                    out.append(Segment(self._from_us(lo), self._from_us(hi)))
            day += timedelta(days=1)
        return out

    def upcoming_exceptions(self, start: date, days: int) -> dict[str, list]:
        """Holidays, extra openings and suspensions from ``start`` for ``days`` days (for feeds and /policy)."""
        end = start + timedelta(days=days)
        holidays = [
            h for year in range(start.year, end.year + 1) for h in sorted(self.holidays_in(year).values(), key=lambda h: h.date)
            if start <= h.date <= end
        ]
        return {
            "holidays": holidays,
            "extra_openings": [e for e in self.extra_openings if start <= e.date <= end],
            "suspensions": [s for s in self.suspensions if start <= s.date <= end],
        }


def _merge(intervals: list[tuple[time, time]]) -> list[tuple[time, time]]:
    merged: list[tuple[time, time]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _subtract(intervals: list[tuple[time, time]], cut_a: time, cut_b: time) -> list[tuple[time, time]]:
    out: list[tuple[time, time]] = []
    for a, b in intervals:
        if cut_b <= a or b <= cut_a:
            out.append((a, b))
            continue
        if a < cut_a:
            out.append((a, cut_a))
        if cut_b < b:
            out.append((cut_b, b))
    return out


def parse_instant(value: object) -> datetime:
    """An ISO 8601 timestamp that must carry a UTC offset ("Z" or ±HH:MM)."""
    if isinstance(value, datetime):
        return require_aware(value)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"se esperaba una fecha y hora ISO 8601 con zona horaria; se recibió {value!r}")
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"no es una fecha y hora ISO 8601: {value!r}") from None
    return require_aware(moment)
