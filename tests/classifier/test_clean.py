"""E-mail clean-up and accent folding keep offsets back to the original text."""

from __future__ import annotations

import functools

import pytest
import spacy
from hypothesis import given
from hypothesis import strategies as st

from classifier.clean import _FOLD_TABLE, clean, fold, spanish


def test_fold_is_one_character_for_one():
    for text in ("Caído", "CONTRASEÑA", "pingüino", "niño ñandú", "İstanbul"):
        assert len(fold(text)) == len(text)
    assert fold("Caído ÑANDÚ") == "caido nandu"


@given(st.text())
def test_fast_fold_paths_agree_with_the_table(text):
    # Latin-1 text goes through bytes.translate and the rest through numpy; both are the one table.
    assert fold(text) == text.translate(_FOLD_TABLE)


@given(st.lists(st.sampled_from(["hola", ".", "¿", "¡", "?", "…", "...", "\n", "no", "abre", "!", " "]), max_size=30))
def test_sentences_cover_every_token_and_split_where_the_policy_says(words):
    text = clean("", " ".join(words))
    tokens = text.tokens
    assert len(text.sentences) == len(tokens)
    for i, (start, end) in enumerate(text.sentences):
        assert start <= i < end
        inside = tokens[start:end]
        assert not any(t in (".", "!", "?", "…", "...") or "\n" in t for t in inside[:-1])
        assert not any(t in ("¿", "¡") for t in inside[1:])


@pytest.mark.parametrize(
    ("body", "gone"),
    [
        ("Gracias.\n\nEl lun, 3 nov 2025 a las 9:12, Soporte <s@x.co> escribió:\n> la plataforma caída", "caída"),
        ("Mire esto\n> línea citada con caída\n> otra", "citada"),
        ("Sigue igual.\n\n-----Mensaje original-----\nDe: Soporte\nEnviado: lunes\nAsunto: caída", "Asunto"),
        ("No abre el portal.\n\nAtentamente,\nMaría Pérez\nRectora\nColegio X", "Rectora"),
        ("No abre el portal.\n--\nMaría Pérez", "María"),
        ("No abre el portal.\n\nAVISO LEGAL: Este mensaje es confidencial y para uso exclusivo del destinatario. "
         "Si lo recibió por error, elimínelo.", "confidencial"),
        ("Buenos días,\n\nNo abre el portal.", "Buenos"),
    ],
)
def test_noise_is_removed_before_matching(body, gone):
    assert gone not in clean("", body).text


def test_forwarded_body_is_kept_but_its_headers_go():
    body = ("Les reenvío.\n\n---------- Mensaje reenviado ----------\nDe: Coordinación <c@x.co>\n"
            "Fecha: mar, 25 nov 2025\nAsunto: notas\nPara: sistemas@x.co\n\nNingún docente puede subir notas.")
    text = clean("", body).text
    assert "Ningún docente puede subir notas" in text and "Fecha:" not in text


def test_offsets_map_back_to_the_original():
    subject, body = "RE: Urgente", "Buenos días,\n\nLa plataforma está CAÍDA.\n\nGracias"
    c = clean(subject, body)
    start = c.folded.index("caida")
    o_start, o_end = c.to_original(start, start + len("caida"))
    assert c.original[o_start:o_end] == "CAÍDA"
    assert c.field_of(o_start)[0] == "body"


def test_long_messages_are_truncated_and_say_so():
    c = clean("", "la plataforma no carga. " * 5000, max_chars=2000)
    assert c.truncated and len(c.text) <= 2000


def test_empty_body_with_subject():
    c = clean("Urgente", "")
    assert c.text.strip() == "Urgente" and not c.truncated


@given(st.text(alphabet=st.sampled_from(list("ab.,¿?:)\n\t \xa0\r-1")), max_size=40))
def test_tokens_are_spacys_own_without_the_whitespace_special_cases(text):
    # The shared pipeline drops whitespace special cases (they stop spaCy's cache); tokens must not change.
    assert [t.text for t in spanish().make_doc(text)] == [t.text for t in _stock().make_doc(text)]


def test_the_shared_tokenizer_is_built_once_with_its_settings():
    nlp = spanish()
    assert spanish() is nlp
    assert nlp.tokenizer.max_cache_size == 100_000
    assert not any(key.isspace() for key in nlp.tokenizer.rules)
    assert set(nlp.tokenizer.rules) == {key for key in _stock().tokenizer.rules if not key.isspace()}


@functools.cache
def _stock():
    return spacy.blank("es")


@pytest.mark.parametrize("run", [")" * 8000, "€" * 5000, "_" * 6000, "¿?" * 3000, ":)" * 4000, "😀" * 3000])
def test_long_symbol_runs_are_blanked_past_their_start_and_the_words_around_them_stay(run):
    # spaCy's tokenizer peels prefixes and suffixes one at a time: a long run of symbols costs the square of its
    # length (8,000 ")" took 5 s). Past its first characters the run is blanked, offsets unchanged.
    text = clean("", f"la plataforma {run} está caída")
    assert len(text.folded) == len(text.text)
    words = [t for t in text.tokens if not t.isspace()]
    assert words[:2] == ["la", "plataforma"] and words[-2:] == ["esta", "caida"]
    assert len(words) <= 2 + 8 + 2
    assert text.text[text.folded.index("esta"):].startswith("está")


@pytest.mark.parametrize("text", ["¡¡¡urgente!!! ya...", "¿¿¿qué pasa???", "ver adjunto :)", "http://x.co/a?b=c&d=e"])
def test_short_symbol_runs_are_left_to_the_tokenizer(text):
    assert [t.text for t in clean("", text).doc] == [t.text for t in _stock().make_doc(fold(text))]


@given(st.text(alphabet=st.sampled_from(list("ab1_ .)😀ñÉ\n€¿") + ["ß", "中"]), max_size=60)
       | st.text(alphabet=st.characters(max_codepoint=255), max_size=60)
       | st.text(alphabet=st.sampled_from(list("a )_\t\xa0\xad·ª²¼×÷")), max_size=60))
def test_the_quick_symbol_run_check_never_misses_a_run(text):
    # The byte table and the narrower class are only shortcuts: blanking must be what the exact pattern alone does.
    from classifier.clean import _SYMBOL_RUN, _SYMBOL_RUN_KEEP, _quiet_symbol_runs

    folded = fold(text)
    exact = _SYMBOL_RUN.sub(lambda m: m[0][:_SYMBOL_RUN_KEEP] + " " * (len(m[0]) - _SYMBOL_RUN_KEEP), folded)
    assert _quiet_symbol_runs(folded) == exact


@pytest.mark.parametrize("notice", [
    "La información contenida en este correo es CONFIDENCIAL y para uso exclusivo de su destinatario.",
    "AVISO LEGAL: la empresa no se hace responsable por el contenido de las opiniones aquí expresadas hoy.",
    "Este mensaje y sus anexos son de uso exclusivo de la persona a la que fueron dirigidos originalmente.",
    "Si usted no es el destinatario indicado, le pedimos borrarlo y avisar al remitente de inmediato.",
    "En cumplimiento de la Ley 1581 de 2012 sus datos personales serán tratados con la debida reserva.",
    "Derecho de Habeas Data: puede conocer, actualizar y rectificar la información que tenemos de usted.",
    "Consulte nuestra política de tratamiento de datos personales en el sitio web de la compañía hoy.",
    "Antes de imprimir este correo piense bien si es necesario hacerlo, cuidemos juntos el planeta.",
    "Cuidemos el medio ambiente: imprima este documento solo si es estrictamente necesario, gracias.",
    "DISCLAIMER: the views expressed in this message are those of the author and not of the company.",
    "If you are not the intended recipient of this message please notify the sender immediately.",
])
def test_every_legal_notice_phrase_is_dropped_and_the_request_kept(notice):
    text = clean("", f"No puedo entrar a la plataforma desde ayer.\n\n{notice}")
    assert "aviso_legal" in text.removed
    assert text.text.strip() == "No puedo entrar a la plataforma desde ayer."


def test_a_long_line_that_only_mentions_a_hint_word_is_kept():
    body = "Este mes no me deja generar el reporte de cartera y necesito enviarlo hoy al banco, por favor."
    assert clean("", body).text.strip() == body


@pytest.mark.parametrize("body", [
    "Asunto: Urgente - error al generar nómina. El proceso de nómina arroja error 500 al liquidar",
    "ASUNTO: no puedo entrar a la plataforma\nDesde ayer me sale clave inválida.",
])
def test_a_subject_line_that_opens_the_body_is_what_the_customer_asks(body):
    text = clean("", body)
    assert "encabezado_reenvio" not in text.removed
    assert "nomina" in text.folded or "plataforma" in text.folded


def test_a_subject_line_inside_a_pasted_header_block_still_goes():
    body = "De: Ana <ana@x.co>\nEnviado: lunes\nAsunto: notas\n\nNingún docente puede subir notas."
    text = clean("", body).text
    assert "Asunto" not in text and "Ningún docente puede subir notas" in text
