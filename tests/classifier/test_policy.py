"""Policy and customer files: malformed configuration fails at start-up naming file, key and reason."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
import yaml

from classifier.calendar import BusinessCalendar
from classifier.customers import load_customers
from classifier.errors import ConfigError
from classifier.ical import calendar_feed
from classifier.policy import load_policy
from classifier.sla import SlaEngine
from tests.conftest import ROOT


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True) if not isinstance(data, str) else data, "utf-8")
    return path


@pytest.fixture
def shipped():
    return yaml.safe_load((ROOT / "rules/policy.yaml").read_text("utf-8"))


def test_shipped_policy_holds_no_exceptions(policy):
    assert policy.calendar.extra_openings == [] and policy.calendar.suspensions == []
    assert policy.calendar.holidays.add == [] and policy.calendar.holidays.remove == []
    assert policy.labels == ["muy_alta", "alta", "media", "baja", "muy_baja"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["calendar"].update(time_zone="America/Bogata"), "calendar.time_zone"),
        (lambda d: d["calendar"].update(weekly_hours={"mon-fri": [["07:00", "25:00"]]}), "calendar.weekly_hours"),
        (lambda d: d["calendar"].update(weekly_hours={"lun-vie": [["07:00", "12:00"]]}), "rango de días desconocido 'lun-vie'"),
        (lambda d: d["calendar"].update(suspensions=[{"date": "2026-10-07", "starts": "15:00", "ends": "14:00",
                                                       "source": "x"}]), "calendar.suspensions.0"),
        (lambda d: d["priorities"][0].update(response_days=-1), "priorities.0.response_days"),
        (lambda d: d["priorities"][0].update(urgencia=3), "priorities.0.urgencia: clave desconocida"),
        (lambda d: d.update(extra_key=1), "extra_key: clave desconocida"),
        (lambda d: d["calendar"].update(horizon_days=3.5), "calendar.horizon_days: debe ser un número entero; "
                                                           "se recibió 3.5"),
        (lambda d: d["calendar"]["holidays"].update(add=[{"date": "2026-13-01", "name": "x", "source": "y"}]),
         "calendar.holidays.add.0.date: fecha no válida: use AAAA-MM-DD"),
        (lambda d: d.update(priorities="x"), "priorities: debe ser una lista; se recibió 'x'"),
        (lambda d: d.pop("company"), "company"),
        (lambda d: d["company"].update(short_name=""), "company.short_name"),
    ],
)
def test_malformed_policy_names_file_and_key(tmp_path, shipped, change, expected):
    change(shipped)
    path = _write(tmp_path, shipped)
    with pytest.raises(ConfigError) as err:
        load_policy(path)
    assert str(path) in str(err.value) and expected in str(err.value)
    assert "Input should" not in str(err.value) and "Value error" not in str(err.value)  # pydantic's English


def test_every_problem_is_reported_at_once(tmp_path, shipped):
    shipped["priorities"][0]["response_days"] = 0
    shipped["calendar"]["time_zone"] = "Marte/Olympus"
    with pytest.raises(ConfigError) as err:
        load_policy(_write(tmp_path, shipped))
    assert len(err.value.problems) == 2 and str(err.value).startswith("2 problemas\n")


def test_invalid_yaml_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="no es YAML válido: línea 2, columna 1: se esperaba"):
        load_policy(_write(tmp_path, "priorities: [\n"))


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="no se puede leer el archivo: no existe"):
        load_policy(tmp_path / "nope.yaml")


def test_customers_with_unknown_distributor_are_rejected(tmp_path):
    path = tmp_path / "customers.yaml"
    path.write_text(yaml.safe_dump({"customers": [{"id": "a", "name": "A", "distributor": "nadie"}]}), "utf-8")
    with pytest.raises(ConfigError, match="1 problema\n.*el cliente 'a' nombra un distribuidor desconocido: 'nadie'"):
        load_customers(path)


def test_shipped_customers_load(settings):
    book = load_customers(settings.customers_path)
    assert book.by_email("rectoria@sanmartin.edu.co").id == "col-san-martin"


def test_the_company_is_data_in_deadlines_and_the_calendar_feed(tmp_path, shipped):
    shipped["company"] = {"name": "Otra Empresa S.A.", "short_name": "Otra"}
    policy = load_policy(_write(tmp_path, shipped))
    calendar = BusinessCalendar.from_config(policy.calendar)
    sla = SlaEngine(policy, calendar, load_customers(ROOT / "data/customers.yaml"))
    result = sla.deadlines("alta", datetime(2026, 11, 25, 9, 0, tzinfo=calendar.tz))
    assert result.handled_by.kind == "empresa" and result.handled_by.name == "Otra Empresa S.A."
    feed = calendar_feed(calendar, policy.company, start=date(2026, 12, 1), days=60).decode("utf-8")
    assert "PRODID:-//Otra Empresa S.A.//" in feed and "X-WR-CALNAME:Horario de atención Otra" in feed
    assert "SIEMPRE" not in feed
