"""Deadline computations per second on one core, and how the cost grows with the days added."""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bench.report import Figure
from classifier.config import load_policy_engine
from classifier.settings import get_settings


def _rate(fn, arrivals) -> float:
    fn(arrivals[0])  # warm the calendar index
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for a in arrivals:
            fn(a)
        best = max(best, len(arrivals) / (time.perf_counter() - start))
    return best


def run() -> list[Figure]:
    engine = load_policy_engine(get_settings())
    cal = engine.calendar
    tz = ZoneInfo("America/Bogota")
    rng = random.Random(7)
    base = datetime(2026, 1, 1, tzinfo=tz)
    arrivals = [base + timedelta(minutes=rng.randrange(0, 365 * 24 * 60)) for _ in range(20000)]
    per_days = {}
    for days in (0.125, 1, 15, 150):
        per_days[days] = _rate(lambda a, d=days: cal.add_days(a, d), arrivals)
    sla_rate = _rate(lambda a: engine.sla.deadlines("alta", a), arrivals[:10000])
    growth = per_days[0.125] / per_days[150]
    return [
        Figure("business-time additions per second (15 days)", per_days[15], "/s", 50000),
        Figure("full SLA results per second (two deadlines, customer, distributor)", sla_rate, "/s"),
        *[Figure(f"additions per second, {d:g} days", r, "/s") for d, r in per_days.items()],
        Figure("cost of 150 days relative to 1 hour", growth, "×", 2.0, higher_is_better=False,
               note="flat means ≈ 1"),
    ]
