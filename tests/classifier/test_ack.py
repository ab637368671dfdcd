"""The acknowledgement text: Colombian dates, one full stop per sentence, service resumption outside hours."""

from __future__ import annotations

import re

import pytest

from classifier.ack import acknowledgement, colombian
from tests.conftest import at


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        ("2026-11-30 08:00", "lunes 30 de noviembre de 2026, 8:00 a. m."),
        ("2026-11-25 15:00", "miércoles 25 de noviembre de 2026, 3:00 p. m."),
        ("2026-12-01 12:00", "martes 1 de diciembre de 2026, 12:00 p. m."),
    ],
)
def test_dates_are_written_the_colombian_way(moment, text):
    assert colombian(at(moment)) == text


@pytest.mark.parametrize(
    ("priority", "arrival", "resumes"),
    [
        ("alta", "2026-11-25 09:00", False),  # response due 3:00 p. m.: the time ends the sentence
        ("muy_alta", "2026-11-25 10:00", False),
        ("media", "2026-11-28 10:00", True),  # Saturday
        ("baja", "2026-11-25 12:30", True),  # lunch break
        ("muy_baja", "2026-12-08 09:00", True),  # festivo
    ],
)
def test_each_sentence_ends_in_one_full_stop(engine, priority, arrival, resumes):
    sla = engine.sla.deadlines(priority, at(arrival))
    text = acknowledgement(sla, engine.calendar)
    assert ".." not in text
    assert text.endswith(".")
    assert ("se reanuda el" in text) is resumes
    if priority == "muy_baja":  # no request identified: the customer is asked for it, not told a priority
        assert "cuéntenos qué necesita" in text and "prioridad" not in text
    else:
        assert f"prioridad {sla.priority_name.lower()}." in text
    assert re.search(r"Le daremos respuesta a más tardar el \w+ \d+ de \w+ de \d{4}, \d+:\d\d [ap]\. m\.( |$)", text)


def test_a_message_whose_request_is_unsure_is_asked_for_details_whatever_its_priority(engine):
    sla = engine.sla.deadlines("alta", at("2026-12-09 09:00"))
    text = acknowledgement(sla, engine.calendar, ask_details=True)
    assert "cuéntenos qué necesita" in text and "prioridad" not in text and "a más tardar" in text


def test_a_customer_with_payments_pending_is_not_told_the_arrears_reason(engine):
    """The reason (support subject to payment) is for the agent; the customer gets a courteous next step."""
    sla = engine.sla.deadlines("alta", at("2026-12-09 09:00"), customer_id="ferreteria-el-tornillo")
    assert sla.response_due is None and "pagos pendientes" in sla.reason
    text = acknowledgement(sla, engine.calendar)
    assert "pagos pendientes" not in text and "mora" not in text
    assert "se comunicará con usted" in text and text.endswith(".")
