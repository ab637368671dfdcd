"""The Spanish acknowledgement the gateway sends to the customer, dates written the Colombian way (Babel)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from babel.dates import format_datetime

from classifier.calendar import BusinessCalendar
from classifier.policy import INCOMPLETE
from classifier.sla import SlaResult

LOCALE = "es_CO"
PATTERN = "EEEE d 'de' MMMM 'de' y, h:mm a"
SHORT_PATTERN = "EEE d MMM y, h:mm a"


def colombian(moment: datetime, *, short: bool = False) -> str:
    """'lunes 30 de noviembre de 2026, 8:00 a. m.', or with ``short`` 'lun 30 nov 2026, 8:00 a. m.' (the review
    console); CLDR es_CO, with ordinary spaces for e-mail clients."""
    return _minute(moment.replace(second=0, microsecond=0), SHORT_PATTERN if short else PATTERN)


@lru_cache(maxsize=4096)
def _minute(moment: datetime, pattern: str) -> str:
    """Cached per minute (the text shows no seconds): Babel's formatter is the slowest step of a classification,
    and deadlines computed from arrival times to the microsecond would never hit a cache of exact instants."""
    return format_datetime(moment, pattern, locale=LOCALE).replace("\u202f", " ").replace("\xa0", " ")


def _sentence(text: str) -> str:
    """``text`` ending in one full stop: a time written "8:00 a. m." already ends in one."""
    return text if text.endswith(".") else text + "."


def acknowledgement(sla: SlaResult, calendar: BusinessCalendar, *, ask_details: bool = False) -> str:
    """Short text the gateway can send as is: priority, response deadline, and when service resumes; with
    ``ask_details`` (no request identified for sure, POLICY §1) it asks what is needed instead of naming a priority."""
    if ask_details or sla.priority == INCOMPLETE:
        parts = ["Recibimos su mensaje. Para poder ayudarle, cuéntenos qué necesita o qué está fallando: el producto "
                 "o servicio, lo que intentaba hacer y, si aparece, el mensaje de error."]
    else:
        parts = [f"Recibimos su mensaje y lo registramos con prioridad {sla.priority_name.lower()}."]
    if not calendar.is_open(sla.received_at):
        parts.append(_sentence(f"Nuestro horario de atención se reanuda el {colombian(sla.service_starts)}"))
    if sla.response_due is not None:
        parts.append(_sentence(f"Le daremos respuesta a más tardar el {colombian(sla.response_due)}"))
    else:  # no committed deadline (payments pending): the agent sees the reason; the customer, a courteous next step
        parts.append("Un asesor revisará su solicitud y se comunicará con usted para confirmar los tiempos de atención "
                     "y el estado de su cuenta.")
    if sla.handled_by.kind == "distribuidor":
        channels = ", ".join(sla.handled_by.channels)
        parts.append(f"La atención la coordina {sla.handled_by.name}" + (f" ({channels})." if channels else "."))
    return " ".join(parts)
