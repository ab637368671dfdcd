"""The model reads what a message asks, not how it greets: courtesy at the edges and punctuation are left out."""

from __future__ import annotations

import pytest

from classifier.clean import clean
from classifier.errors import ConfigError
from classifier.model_input import ModelInputBuilder
from classifier.rule_engine import RuleEngine
from tests.conftest import ROOT

RULES = RuleEngine.from_dir(ROOT / "rules/prioridad")
BUILD = ModelInputBuilder.beside_rules(ROOT / "rules/prioridad")


def words(text: str, subject: str = "") -> tuple[str, ...]:
    cleaned = clean(subject, text)
    return BUILD(cleaned, RULES.match(cleaned)).tokens


@pytest.mark.parametrize("text, expected", [
    ("hola buenos días mire le llamaba porque quiero cambiar mi dirección", "quiero cambiar mi direccion"),
    ("Buenas tardes, ¿cómo cambio la clave? Muchas gracias.", "como cambio la clave"),
    ("aló sí buenas es que no me deja entrar a la app gracias", "no me deja entrar a la app"),
    ("NO CARGA LA PLATAFORMA!!! por favor", "no carga la plataforma"),
    ("la app no abre", "la app no abre"),
])
def test_spoken_openings_sign_offs_and_punctuation_are_not_read(text, expected):
    assert " ".join(words(text)) == expected


def test_a_message_made_only_of_courtesy_is_read_whole():
    """Nothing would be left: the model then sees the formulas themselves (and the incomplete rule sees them too)."""
    assert words("hola buenos días por favor") == ("hola", "buenos", "dias", "por", "favor")


def test_same_request_reads_the_same_whatever_the_greeting():
    assert words("Buenos días, necesito el certificado de retención. Gracias") == \
        words("necesito el certificado de retencion") == words("hola mira necesito el certificado de retención")


def test_rules_that_fired_reach_the_model():
    cleaned = clean("", "no puedo ingresar a la plataforma")
    assert "acceso_perdido" in BUILD(cleaned, RULES.match(cleaned)).rules


def test_malformed_courtesy_file_is_a_config_error(tmp_path):
    path = tmp_path / "estilo.yaml"
    path.write_text("aperturas: hola\nsaludos: []\n", "utf-8")
    with pytest.raises(ConfigError) as error:
        ModelInputBuilder.from_file(path)
    assert "estilo.yaml" in str(error.value) and "saludos" in str(error.value)


def test_without_a_courtesy_file_nothing_is_stripped(tmp_path):
    build = ModelInputBuilder.from_file(tmp_path / "estilo.yaml")
    cleaned = clean("", "hola quiero pagar la factura")
    assert build(cleaned, RULES.match(cleaned)).tokens[:2] == ("hola", "quiero")
