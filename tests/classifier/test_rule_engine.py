"""Rule engine: policy cases, negation/resolution/hypothesis, evidence offsets, impact, and bad rule files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from classifier.clean import clean
from classifier.errors import ConfigError
from classifier.rule_engine import RuleEngine
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return RuleEngine.from_dir(ROOT / "rules/prioridad")


def decide_rules(engine, body, subject=""):
    return engine.match(clean(subject, body))


# One row per POLICY §1 sentence or decision.
@pytest.mark.parametrize(
    ("body", "priority"),
    [
        ("hola", "muy_baja"),
        ("ayuda", "muy_baja"),
        ("no funciona", "muy_baja"),
        ("Ver adjunto", "muy_baja"),
        ("quedo atento", "muy_baja"),
        ("Buenas tardes, me sale un error", "muy_baja"),
        ("La plataforma está caída desde las 7, nadie puede trabajar", "muy_alta"),
        ("Desde ayer no puedo ingresar a la plataforma, dice acceso denegado", "muy_alta"),
        ("mi usuario quedó bloqueado después de tres intentos", "muy_alta"),
        ("no ha salido ni una factura hoy, la DIAN no recibe nada", "muy_alta"),
        ("Al generar el boletín sale un error de promedio", "alta"),
        ("los valores de cartera salen errados desde ayer", "alta"),
        ("Quiero presentar una queja formal por la atención recibida", "alta"),
        ("llevamos 15 días esperando respuesta y nadie nos contesta", "alta"),
        ("¿Cómo cambio mi contraseña?", "media"),
        ("URGENTE: ¿cómo genero los boletines por curso?", "media"),
        ("Necesitamos un reporte a la medida de cartera por edades, ¿cuánto costaría desarrollarlo?", "media"),
    ],
)
def test_policy_cases(engine, body, priority):
    assert decide_rules(engine, body).priority == priority


@pytest.mark.parametrize(
    "body",
    [
        "No es que la plataforma esté caída, solo quiero saber el horario de mantenimiento.",
        "¿Qué pasa si se cae la plataforma en plena matrícula?",
        "Ayer se cayó el sistema pero ya quedó, muchas gracias.",
        "En caso de que la plataforma esté caída, ¿a qué número llamamos?",
        "No hay caída, solo una pregunta sobre la factura.",
    ],
)
def test_negated_resolved_or_hypothetical_outage_does_not_raise(engine, body):
    result = decide_rules(engine, body)
    assert result.priority not in ("muy_alta", "alta")


def test_resolved_outage_is_reported_as_suppressed(engine):
    result = decide_rules(engine, "Ayer se cayó el sistema pero ya quedó, muchas gracias.")
    assert any(h.rule_id == "servicio_caido" and h.suppressed_by == "resuelto" for h in result.suppressed)


def test_new_outage_after_resolved_one_still_counts(engine):
    body = "El problema de ayer ya se solucionó, gracias. Hoy desde las 7 la plataforma está caída otra vez."
    assert decide_rules(engine, body).priority == "muy_alta"


def test_incomplete_wins_even_when_a_rule_fires_on_filler(engine):
    result = decide_rules(engine, "ayuda urgente no funciona")
    assert result.priority == "muy_baja" and result.deciding.rule_id == "mensaje_incompleto"


def test_evidence_points_at_the_original_text(engine):
    subject = "URGENTE"
    body = "Buenos días,\n\nDesde hoy la PLATAFORMA está CAÍDA para todos.\n\nAtentamente,\nJuana Pérez\nSecretaria"
    result = engine.match(clean(subject, body))
    hit = next(h for h in result.hits if h.rule_id == "servicio_caido")
    ev = hit.evidence[0]
    assert ev.field == "body" and body[ev.start:ev.end] == ev.text
    assert "CAÍDA" in ev.text  # shown as the customer wrote it, accents and capitals included


def test_accent_folding_matches_unaccented_text(engine):
    assert decide_rules(engine, "la plataforma esta caida").priority == "muy_alta"
    assert decide_rules(engine, "LA PLATAFORMA ESTÁ CAÍDA").priority == "muy_alta"


def test_quoted_reply_is_not_matched(engine):
    body = ("Muchas gracias, ya quedó todo bien.\n\nEl lun, 3 nov 2025 a las 9:12, Soporte <soporte@siempre.net> "
            "escribió:\n> ¿Sigue la plataforma caída?\n> Quedamos atentos.")
    result = decide_rules(engine, body)
    assert "servicio_caido" not in result.fired_ids


@pytest.mark.parametrize(
    ("body", "scope"),
    [
        ("A 12 de 40 docentes les sale un error al guardar notas", "grupo_20_o_mas"),
        ("A 3 de los 40 docentes les sale un error al guardar notas", "grupo_menor_20"),
        ("a 7 de 35 docentes no les guarda la asistencia", "grupo_20_o_mas"),
        ("el 10 % de los padres ve valores errados en el estado de cuenta", "grupo_menor_20"),
        ("el 50% de los usuarios no pueden entrar", "grupo_20_o_mas"),
        ("el 5% de los usuarios no pueden entrar", "grupo_menor_20"),
        ("Tenemos un total de 40 usuarios y a 12 les sale error al guardar", "grupo_20_o_mas"),
        ("Tenemos un total de 40 usuarios y a 2 les sale error al guardar", "grupo_menor_20"),
        ("somos 40 en la oficina y a 3 les sale error al guardar", "grupo_menor_20"),
        ("tenemos 25 docentes, a 10 les sale error al guardar notas", "grupo_20_o_mas"),
        ("la mitad de los padres ve valores errados en el estado de cuenta", "grupo_20_o_mas"),
        ("solo a mí me sale un error al imprimir el boletín", "un_usuario"),
        ("la plataforma está caída y ya van tres colegios con lo mismo", "varios_clientes"),
        ("nadie puede ingresar a la plataforma", "grupo_20_o_mas"),
        ("La plataforma está caída desde las 7", "desconocido"),
    ],
)
def test_impact_scope(engine, body, scope):
    assert decide_rules(engine, body).impact.scope == scope


def test_suggestion_is_evidence_but_the_model_decides(engine):
    # Suggestion phrases also appear inside complaints and rambling letters: shown as a reason, not decisive.
    result = decide_rules(engine, "Sería bueno que la app tuviera modo oscuro")
    assert "sugerencia_mejora" in result.fired_ids and result.priority is None


def test_no_failure_means_impact_is_not_looked_for(engine):
    # A rule decided a priority that is not a failure: the reach of a failure does not apply.
    result = decide_rules(engine, "¿Cómo hago para que todos los docentes vean el horario?")
    assert result.priority == "media" and result.impact is None


# ------------------------------------------------------------------ bad rule files fail at start-up

@pytest.fixture
def rules_copy(tmp_path) -> Path:
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    return tmp_path / "rules"


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text("utf-8") + "\n" + text, "utf-8")


def test_unknown_key_is_reported_with_file_and_rule(rules_copy):
    _append(rules_copy / "prioridad/media.yaml",
            '- id: "nueva"\n  priority: "media"\n  description: "Una regla nueva."\n  patronez: ["hola"]\n')
    with pytest.raises(ConfigError) as err:
        RuleEngine.from_dir(rules_copy / "prioridad")
    assert "media.yaml" in str(err.value) and '"nueva"' in str(err.value)
    assert "patronez: clave desconocida" in str(err.value)


def test_unknown_priority_is_reported(rules_copy):
    _append(rules_copy / "prioridad/media.yaml",
            '- id: "nueva"\n  priority: "urgentisima"\n  description: "Una regla nueva."\n  patterns: ["hola"]\n')
    with pytest.raises(ConfigError, match="priority"):
        RuleEngine.from_dir(rules_copy / "prioridad")


def test_bad_pattern_is_reported(rules_copy):
    _append(rules_copy / "prioridad/media.yaml",
            '- id: "nueva"\n  priority: "media"\n  description: "Una regla nueva."\n'
            '  patterns: [[{LOWER: "hola", OP: "??"}]]\n')
    with pytest.raises(ConfigError) as err:
        RuleEngine.from_dir(rules_copy / "prioridad")
    assert '"nueva"' in str(err.value) and "patterns[0]: patrón de tokens no válido: [0].OP: valor no permitido: " \
        "use '+', '*', '?' o '!'" in str(err.value)


def test_bare_no_in_yaml_is_reported(rules_copy):
    _append(rules_copy / "prioridad/media.yaml",
            '- id: "nueva"\n  priority: "media"\n  description: "Una regla nueva."\n'
            '  patterns: [[{LOWER: no}, {LOWER: "sirve"}]]\n')
    with pytest.raises(ConfigError, match='debe ser texto; se recibió False. Escriba "no"'):
        RuleEngine.from_dir(rules_copy / "prioridad")


def test_duplicate_rule_id_is_reported(rules_copy):
    _append(rules_copy / "prioridad/media.yaml",
            '- id: "acceso_perdido"\n  priority: "media"\n  description: "Otra vez."\n  patterns: ["hola"]\n')
    with pytest.raises(ConfigError, match='el id de regla "acceso_perdido" está repetido'):
        RuleEngine.from_dir(rules_copy / "prioridad")


def test_support_lead_adds_a_rule_with_yaml_only(rules_copy):
    _append(rules_copy / "prioridad/alta.yaml",
            '- id: "firma_digital_vencida"\n  priority: "alta"\n  request_type: "incidente"\n'
            '  description: "El certificado de firma digital para facturar está vencido."\n'
            '  patterns: ["firma digital vencida"]\n'
            '  examples: {match: ["La firma digital vencida no deja validar"], no_match: ["¿Cuándo vence la firma?"]}\n')
    engine = RuleEngine.from_dir(rules_copy / "prioridad")
    result = engine.match(clean("", "Nos aparece la firma digital vencida en facturación"))
    assert "firma_digital_vencida" in result.fired_ids


def test_an_incomplete_rule_yields_to_a_thanks_or_a_closure():
    """"gracias por la ayuda, ya quedó" is thanks (POLICY §1: baja), not an unidentified request."""
    engine = RuleEngine.from_dir(ROOT / "rules" / "prioridad")
    result = engine.match(clean("", "gracias por la ayuda, ya quedó"))
    assert "mensaje_incompleto" not in result.fired_ids and "caso_resuelto" in result.fired_ids
    assert engine.match(clean("", "quedo atento, gracias")).priority == "muy_baja"


def test_yields_to_an_unknown_rule_is_a_configuration_error(tmp_path):
    rules = tmp_path / "prioridad"
    rules.mkdir()
    for name in ("contexto.yaml", "impacto.yaml", "estilo.yaml"):
        (tmp_path / name).write_text((ROOT / "rules" / name).read_text("utf-8"), "utf-8")
    (rules / "x.yaml").write_text('- id: "vacio"\n  priority: "muy_baja"\n  kind: "incompleto"\n'
                                  '  description: "Solo saludo."\n  yields_to: ["no_existe"]\n', "utf-8")
    with pytest.raises(ConfigError, match="no_existe"):
        RuleEngine.from_dir(rules)
