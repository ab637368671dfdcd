"""SLA deadlines and customer conditions (POLICY §4–6)."""

from __future__ import annotations

import pytest

from classifier.errors import InputError
from tests.conftest import at


@pytest.mark.parametrize(
    ("priority", "arrival", "response", "solution"),
    [
        ("muy_alta", "2026-11-25 16:30", "2026-11-26 07:30", "2026-11-26 16:30"),
        ("alta", "2026-11-27 16:30", "2026-11-30 10:30", "2026-12-01 16:30"),
        ("media", "2026-11-25 09:00", "2026-11-26 09:00", "2026-12-02 09:00"),
        ("baja", "2026-11-28 10:00", "2026-12-01 17:00", "2026-12-14 17:00"),  # Saturday; 8 Dec festivo
        ("muy_baja", "2026-11-25 12:30", "2026-11-30 12:00", "2026-12-17 12:00"),
    ],
)
def test_table_deadlines(engine, priority, arrival, response, solution):
    result = engine.sla.deadlines(priority, at(arrival))
    assert (result.response_due, result.solution_due) == (at(response), at(solution))
    assert result.committed and result.level == "N1"


def test_unknown_customer_gets_regular_deadlines_and_says_so(engine):
    result = engine.sla.deadlines("alta", at("2026-11-25 09:00"), sender="rector@desconocido.edu.co")
    assert result.committed and result.response_due == at("2026-11-25 15:00")
    assert result.customer.known is False


def test_customer_in_arrears_gets_priority_but_no_committed_deadlines(engine):
    result = engine.sla.deadlines("muy_alta", at("2026-11-25 09:00"), sender="gerencia@eltornillo.com.co")
    assert result.customer.id == "ferreteria-el-tornillo"
    assert not result.committed and result.response_due is None and result.solution_due is None
    assert "pago" in result.reason


def test_custom_development_has_no_solution_deadline(engine):
    result = engine.sla.deadlines("media", at("2026-11-25 09:00"), request_type="desarrollo")
    assert result.response_due == at("2026-11-26 09:00") and result.solution_due is None
    assert "acuerdo previo" in result.reason


def test_distributor_customer_names_distributor_and_channels(engine):
    result = engine.sla.deadlines("alta", at("2026-11-25 09:00"), sender="coordinacion@gimnasiolosandes.edu.co",
                                  product="academico")
    assert result.handled_by.kind == "distribuidor"
    assert result.handled_by.name.startswith("Soluciones Educativas Andinas")
    assert result.handled_by.channels and "academico" in result.handled_by.products


def test_distributor_does_not_handle_products_outside_its_contract(engine):
    result = engine.sla.deadlines("alta", at("2026-11-25 09:00"), customer_id="gimnasio-los-andes",
                                  product="nomina")
    assert result.handled_by.kind == "empresa"


def test_customer_by_subdomain(engine):
    result = engine.sla.deadlines("baja", at("2026-11-25 09:00"), sender="x@correo.sanmartin.edu.co")
    assert result.customer.id == "col-san-martin" and result.customer.matched_by == "sender"


def test_unknown_priority_is_an_input_error(engine):
    with pytest.raises(InputError, match="prioridad desconocida 'urgentisima': use una de muy_alta, alta"):
        engine.sla.deadlines("urgentisima", at("2026-11-25 09:00"))


def test_escalation_after_response_time_raises_priority_from_original_arrival(engine):
    check = engine.sla.escalation("alta", at("2026-11-25 09:00"), level="N1", now=at("2026-11-25 15:01"))
    assert check.escalate and check.proposed_level == "N2"
    assert check.proposed.priority == "muy_alta"
    assert check.proposed.response_due == at("2026-11-25 10:00")  # counted from the arrival, not from now


def test_escalation_not_before_response_time(engine):
    check = engine.sla.escalation("alta", at("2026-11-25 09:00"), level="N1", now=at("2026-11-25 14:59"))
    assert not check.escalate


def test_muy_alta_stays_muy_alta_and_goes_to_n2(engine):
    check = engine.sla.escalation("muy_alta", at("2026-11-25 09:00"), level="N1", now=at("2026-11-25 10:30"))
    assert check.escalate and check.proposed.priority == "muy_alta" and check.proposed_level == "N2"


def test_ticket_already_at_n2_is_not_escalated_again(engine):
    check = engine.sla.escalation("alta", at("2026-11-25 09:00"), level="N2", now=at("2026-12-25 09:00"))
    assert not check.escalate


def test_priority_change_counts_from_original_arrival(engine):
    before = engine.sla.deadlines("baja", at("2026-11-25 09:00"))
    after = engine.sla.deadlines("alta", before.received_at)
    assert after.response_due == at("2026-11-25 15:00")


def test_explanation_lists_intervals_day_by_day(engine):
    result = engine.sla.deadlines("alta", at("2026-11-27 16:30"))
    explanation = result.as_dict(explain=True)["explanation"]["response"]
    assert explanation == [
        {"date": "2026-11-27", "intervals": [["16:30", "17:00"]], "business_minutes": 30.0},
        {"date": "2026-11-30", "intervals": [["07:00", "10:30"]], "business_minutes": 210.0},
    ]
