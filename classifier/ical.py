"""The customers' calendar feed: upcoming holidays and announced exceptions as iCalendar."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import icalendar

from classifier.calendar import BusinessCalendar

PRODID = "-//SIEMPRE.NET S.A.S.//Calendario de atencion//ES"


def calendar_feed(calendar: BusinessCalendar, *, start: date, days: int = 365) -> bytes:
    """An .ics file with holidays (all-day), extended hours and suspensions (timed) from ``start``."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("x-wr-calname", "Horario de atención SIEMPRE.NET")
    cal.add("x-wr-timezone", str(calendar.tz))
    stamp = datetime(start.year, start.month, start.day, tzinfo=calendar.tz)
    found = calendar.upcoming_exceptions(start, days)
    for h in found["holidays"]:
        event = icalendar.Event()
        event.add("uid", f"festivo-{h.date.isoformat()}@siempre.net")
        event.add("dtstamp", stamp)
        event.add("summary", f"Sin atención: {h.name}")
        event.add("description", f"Festivo en Colombia. Fuente: {h.source}.")
        event.add("dtstart", h.date)
        event.add("dtend", h.date + timedelta(days=1))
        event.add("transp", "TRANSPARENT")
        cal.add_component(event)
    for e in found["extra_openings"]:
        event = icalendar.Event()
        event.add("uid", f"extension-{e.date.isoformat()}-{e.opens:%H%M}@siempre.net")
        event.add("dtstamp", stamp)
        event.add("summary", "Horario extendido de atención")
        event.add("description", f"Atención adicional de {e.opens:%H:%M} a {e.closes:%H:%M}. Fuente: {e.source}.")
        event.add("dtstart", datetime.combine(e.date, e.opens, calendar.tz))
        event.add("dtend", datetime.combine(e.date, e.closes, calendar.tz))
        cal.add_component(event)
    for s in found["suspensions"]:
        event = icalendar.Event()
        event.add("uid", f"suspension-{s.date.isoformat()}-{s.starts:%H%M}@siempre.net")
        event.add("dtstamp", stamp)
        event.add("summary", "Suspensión del servicio de atención")
        event.add("description", f"Sin atención de {s.starts:%H:%M} a {s.ends:%H:%M}. Fuente: {s.source}.")
        event.add("dtstart", datetime.combine(s.date, s.starts, calendar.tz))
        event.add("dtend", datetime.combine(s.date, s.ends, calendar.tz))
        cal.add_component(event)
    return cal.to_ical()
