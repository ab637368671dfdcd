"""The customers' calendar feed: upcoming holidays and announced exceptions as iCalendar."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import icalendar

from classifier.calendar import BusinessCalendar
from classifier.policy import CompanyConfig

def calendar_feed(calendar: BusinessCalendar, company: CompanyConfig, *, start: date, days: int = 365) -> bytes:
    """An .ics file with holidays (all-day), extended hours and suspensions (timed) from ``start``, named for
    ``company`` (the policy's)."""
    cal = icalendar.Calendar()
    cal.add("prodid", f"-//{company.name}//Calendario de atencion//ES")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"Horario de atención {company.short_name}")
    cal.add("x-wr-timezone", str(calendar.tz))
    stamp = datetime(start.year, start.month, start.day, tzinfo=calendar.tz)
    found = calendar.upcoming_exceptions(start, days)
    for h in found["holidays"]:
        cal.add_component(_event(f"festivo-{h.date.isoformat()}", stamp, f"Sin atención: {h.name}",
                                 f"Festivo en Colombia. Fuente: {h.source}.", h.date, h.date + timedelta(days=1),
                                 transparent=True))
    for e in found["extra_openings"]:
        cal.add_component(_event(f"extension-{e.date.isoformat()}-{e.opens:%H%M}", stamp,
                                 "Horario extendido de atención",
                                 f"Atención adicional de {e.opens:%H:%M} a {e.closes:%H:%M}. Fuente: {e.source}.",
                                 datetime.combine(e.date, e.opens, calendar.tz),
                                 datetime.combine(e.date, e.closes, calendar.tz)))
    for x in found["suspensions"]:
        cal.add_component(_event(f"suspension-{x.date.isoformat()}-{x.starts:%H%M}", stamp,
                                 "Suspensión del servicio de atención",
                                 f"Sin atención de {x.starts:%H:%M} a {x.ends:%H:%M}. Fuente: {x.source}.",
                                 datetime.combine(x.date, x.starts, calendar.tz),
                                 datetime.combine(x.date, x.ends, calendar.tz)))
    return cal.to_ical()


def _event(uid: str, stamp: datetime, summary: str, description: str, start, end, *, transparent: bool = False
           ) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", f"{uid}@siempre.net")
    event.add("dtstamp", stamp)
    event.add("summary", summary)
    event.add("description", description)
    event.add("dtstart", start)
    event.add("dtend", end)
    if transparent:
        event.add("transp", "TRANSPARENT")
    return event
