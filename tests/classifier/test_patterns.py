"""Compiled patterns (phrase sets, windows, Matcher fallback) find the same spans as spaCy's own Matcher."""

from __future__ import annotations

from collections import Counter, defaultdict
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.matcher import Matcher

from classifier import patterns as compiled_patterns
from classifier.clean import clean, spanish
from classifier.patterns import CompiledPatterns, fold_pattern
from classifier.impact import ImpactFinder
from classifier.rule_engine import CUE, RuleEngine
from classifier.yamlfile import read_yaml
from tests.conftest import ROOT

END_PUNCT = {"IS_PUNCT": True}


def as_tokens(pattern) -> list[dict]:
    """A folded pattern as spaCy token dicts: a phrase is one ``LOWER`` per token, as ``add`` tokenises it."""
    if isinstance(pattern, str):
        return [{"LOWER": t.text} for t in spanish().make_doc(pattern) if not t.is_space]
    return pattern


def spacy_matcher(keyed: list[tuple[str, object]]):
    """spaCy's Matcher as doc → spans per key, plus a final ``{IS_PUNCT: true}`` met by the end of the message
    (its trailing emoji, symbols, mentions and links aside)."""
    vocab = spanish().vocab
    matcher, at_end = Matcher(vocab, validate=True), Matcher(vocab, validate=True)
    for key, pattern in keyed:
        tokens = as_tokens(pattern)
        matcher.add(key, [tokens])
        if len(tokens) > 1 and tokens[-1] == END_PUNCT:
            at_end.add(key, [tokens[:-1]])

    def spans(doc) -> dict[str, set[tuple[int, int]]]:
        found: dict[str, set[tuple[int, int]]] = defaultdict(set)
        for match_id, start, end in matcher(doc):
            found[vocab.strings[match_id]].add((start, end))
        words_end = max([i + 1 for i, t in enumerate(doc) if t.is_alpha or t.like_num or t.is_punct], default=0)
        for match_id, start, end in at_end(doc) if len(at_end) else ():
            if end >= words_end:
                found[vocab.strings[match_id]].add((start, end))
        return dict(found)

    return spans


def compiled_spans(compiled: CompiledPatterns, doc, sentences=None) -> dict[str, set[tuple[int, int]]]:
    return {key: set(spans) for key, spans in compiled(doc, sentences).items()}


def assert_sentences_only_drop_crossing(compiled: CompiledPatterns, text) -> None:
    """With the message's sentences, only spans that cross a sentence may go."""
    free = compiled_spans(compiled, text.doc)
    bounded = compiled_spans(compiled, text.doc, text.sentences)
    for key in free.keys() | bounded.keys():
        kept, all_spans = bounded.get(key, set()), free.get(key, set())
        assert kept <= all_spans, key
        assert all(text.sentences[s] != text.sentences[e - 1] for s, e in all_spans - kept), key


# ------------------------------------------------------------------ generated patterns and texts

WORDS = ["no", "se", "la", "plataforma", "cae", "entrar", "dos", "12"]
PUNCTUATION = [".", ",", "?", "¿", "!"]
word = st.sampled_from(WORDS)
some_words = st.lists(word, min_size=1, max_size=4, unique=True)

plain_token = st.one_of(word.map(lambda w: {"LOWER": w}), some_words.map(lambda ws: {"LOWER": {"IN": ws}}))
word_token = st.tuples(plain_token, st.integers(0, 3)).map(lambda t: {**t[0], "OP": "?"} if t[1] == 0 else t[0])
gap_token = st.tuples(
    st.sampled_from(["{,%d}", "{0,%d}"]), st.integers(0, 3),
    st.sampled_from([{}, {"IS_PUNCT": False}, {"IS_PUNCT": False}, {"IS_PUNCT": True}, {"IS_ALPHA": True}]),
    st.one_of(st.none(), st.none(), some_words),
).map(lambda t: {**t[2], **({"LOWER": {"NOT_IN": t[3]}} if t[3] else {}), "OP": t[0] % t[1]})
single_token = st.sampled_from([{}, {"LIKE_NUM": True}, {"IS_PUNCT": True}])
other_token = st.one_of(st.sampled_from([{"IS_ALPHA": True}, {"LIKE_NUM": True, "OP": "?"}, {"OP": "{1,2}"}]),
                        word.map(lambda w: {"LOWER": w, "OP": "+"}))
side = st.lists(word_token, min_size=1, max_size=2)


@st.composite
def token_patterns(draw) -> list[dict] | str:
    """A phrase, word alternatives, a gap or single token between words, or Matcher-only and edge tokens."""
    shape = draw(st.sampled_from(["phrase", "words", "gap", "gap", "gap", "single", "single", "other", "two"]))
    if shape == "phrase":
        return " ".join(draw(st.lists(st.sampled_from(WORDS + PUNCTUATION), min_size=1, max_size=3)))
    if shape in ("gap", "single"):
        left, right = draw(side), draw(side)
        if shape == "single":
            left, right = draw(st.sampled_from([(left, right), (left, []), ([], right)]))
        return left + [draw(gap_token if shape == "gap" else single_token)] + right
    tokens = draw(st.lists(word_token, min_size=1, max_size=3))
    extra = {"words": [], "other": [other_token], "two": [st.one_of(gap_token, single_token)] * 2}[shape]
    for strategy in extra:
        tokens.insert(draw(st.integers(0, len(tokens))), draw(strategy))
    return tokens


keyed_patterns = st.lists(st.tuples(st.sampled_from(["a", "b"]), token_patterns()), min_size=1, max_size=3)


noise = st.lists(st.sampled_from(WORDS + PUNCTUATION + ["\n", "😭", "@soporte"]), max_size=3)


@st.composite
def instance(draw, pattern) -> list[str]:
    """Words that follow a pattern, or nearly: an alternative per token, filler for gaps, anything for the rest."""
    if isinstance(pattern, str):
        return pattern.split()
    out = []
    for token in pattern:
        value, op = token.get("LOWER"), token.get("OP")
        options = [value] if isinstance(value, str) else value.get("IN", []) if isinstance(value, dict) else []
        counts = {None: (1, 1), "?": (0, 1), "+": (1, 2)}.get(op, (0, 3))  # else a gap, "{,N}" or "{1,2}"
        out += [draw(st.sampled_from(options or WORDS + PUNCTUATION)) for _ in range(draw(st.integers(*counts)))]
    return out


@st.composite
def patterns_and_texts(draw) -> tuple[list, str]:
    """Patterns, and a text made of instances of them between a few other words and punctuation marks."""
    keyed = draw(keyed_patterns)
    words = draw(noise)
    for _, pattern in keyed:
        words += draw(st.lists(instance(pattern), max_size=2).map(lambda xs: [w for x in xs for w in x])) + draw(noise)
    return keyed, " ".join(words)


def test_compiled_patterns_agree_with_spacy_matcher_on_generated_patterns():
    """Per key, the same set of spans as spaCy's Matcher, hence the same longest spans (evidence, context) and
    firing keys the rule engine and impact use; generated patterns of every compiled shape, texts of their words."""
    seen: Counter = Counter()

    @settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=patterns_and_texts(), max_phrases=st.sampled_from([4, 4000]))
    def check(case, max_phrases):
        keyed, body = case
        compiled = CompiledPatterns(spanish().vocab)
        with mock.patch.object(compiled_patterns, "MAX_PHRASES", max_phrases):  # small: two adjacent phrase sets
            for key, pattern in keyed:
                compiled.add(key, fold_pattern(pattern))
        text = clean("", body)
        expected = spacy_matcher(keyed)(text.doc)
        assert compiled_spans(compiled, text.doc) == expected, [t.text for t in text.doc]
        assert_sentences_only_drop_crossing(compiled, text)
        seen.update(examples=1, matched=bool(expected), windows=bool(compiled.windows),
                    one=any(w.one for _, w, _, _ in compiled.windows), fallback=bool(compiled.matcher_patterns),
                    word_side=any(w.left_words or w.right_words for _, w, _, _ in compiled.windows))

    check()
    assert seen["matched"] >= seen["examples"] // 3, seen
    assert min(seen["windows"], seen["one"], seen["fallback"]) >= seen["examples"] // 10, seen
    assert seen["word_side"] >= seen["examples"] // 40, seen  # a window side of single words (~7 % of examples)


# ------------------------------------------------------------------ every shipped pattern on every example

RULES = ROOT / "rules"
GENERIC = [
    "La plataforma está caída desde las 7 y nadie puede trabajar.",
    "Buenos días, no puedo entrar",
    "no me deja entrar",
    "Nadie.",
    "nadie",
    "Se cayó el sistema, se cayó la red y la página no carga.",
    "El sistema de notas no está cargando pero el de cartera sí.",
    "¿Qué pasa si se cae el servidor? La plataforma no. Está caída la app.",
    "Desde ayer el portal, el correo y la app no funcionan",
    "Me rechazan la tarjeta y rechazan el pago cada vez",
    "rechazan la tarjeta",
    "Nos cobraron doble y hay un cobro de ayer que no reconozco.",
    "El pago de la mensualidad fue rechazado por el banco",
    "Mi usuario quedó bloqueado después de tres intentos, la cuenta bloqueada.",
    "Usuario o contraseña incorrectos. No puedo ingresar a la plataforma desde el celular",
    "A 12 de 40 docentes les sale un error al guardar notas",
    "Ya van tres colegios con lo mismo; otros colegios también.",
    "llevamos 15 días esperando respuesta y nadie nos contesta",
    "Llevamos más de un mes sin respuesta. Es el colmo.",
    "¿Cómo cambio mi contraseña? ¿Cómo se genera el boletín?",
    "Necesitamos cotizar una integración con el banco y un desarrollo a la medida",
    "¿Cuánto cuesta la licencia? ¿Tienen una demo?",
    "Seguimiento al caso 48213, ticket # 5521 y radicado no. 77",
    "Los valores de cartera salen errados, los totales mal y los saldos duplicados",
    "Al generar el reporte sale un error de validación; error al guardar.",
    "No es que la plataforma esté caída, solo quiero saber el horario.",
    "Ayer se cayó el sistema pero ya quedó, gracias.",
    "En caso de que la plataforma esté caída, ¿a qué número llamamos?",
    "La app se cierra sola al abrir y el sistema se quedó congelado",
    "no carga la plataforma ni el correo ni la página",
    "Todos los docentes y todas las familias ven lo mismo",
    "Solo a mí me pasa, a los demás sí les funciona",
    "Quiero bloquear mi tarjeta por favor, la perdí",
    "Necesito un certificado de paz y salvo y copia de la factura",
    "Hola\nno puedo entrar\nla plataforma\ncaída",
    "Ver adjunto",
    "el sistema. no funciona",
    "mi impresora no funciona y el lector no sirve",
    "La pasarela está rechazando todos los pagos desde las 8 a. m.",
    "me aparece un cargo que desconozco en el extracto",
]


def rule_patterns() -> list[tuple[str, object]]:
    """(id, pattern) for every pattern of prioridad, contexto and impacto (estilo.yaml holds phrases to strip only)."""
    out = []
    for path in sorted((RULES / "prioridad").glob("*.yaml")):
        for rule in read_yaml(path):
            out += [(f"{path.stem}:{rule['id']}:{i}", p) for i, p in enumerate(rule.get("patterns", []))]
    for kind, spec in read_yaml(RULES / "contexto.yaml").items():
        out += [(f"contexto:{kind}:{i}", p) for i, p in enumerate(spec["patterns"])]
    for group in read_yaml(RULES / "impacto.yaml")["groups"]:
        out += [(f"impacto:{group['name']}:{i}", p) for i, p in enumerate(group.get("patterns", []))]
    return out


def rule_examples() -> list[str]:
    out = []
    for path in sorted((RULES / "prioridad").glob("*.yaml")):
        for rule in read_yaml(path):
            examples = rule.get("examples", {})
            out += examples.get("match", []) + examples.get("no_match", [])
    return out


PATTERNS = rule_patterns()
TEXTS = rule_examples() + GENERIC


@pytest.fixture(scope="module")
def disagreements() -> dict[str, list]:
    """Per pattern id, the texts where compiled and spaCy spans differ (every pattern under its own key)."""
    keyed = [(key, fold_pattern(pattern)) for key, pattern in PATTERNS]
    compiled = CompiledPatterns(spanish().vocab)
    for key, pattern in keyed:
        compiled.add(key, pattern)
    spacy_spans = spacy_matcher(keyed)
    out: dict[str, list] = defaultdict(list)
    for body in TEXTS:
        text = clean("", body)
        ours, expected = compiled_spans(compiled, text.doc), spacy_spans(text.doc)
        for key in ours.keys() | expected.keys():
            if ours.get(key) != expected.get(key):
                out[key].append((body, sorted(ours.get(key, ())), sorted(expected.get(key, ()))))
        assert_sentences_only_drop_crossing(compiled, text)
    return out


@pytest.mark.parametrize("key", [key for key, _ in PATTERNS])
def test_every_rule_pattern_agrees_with_spacy_matcher(disagreements, key):
    """Every pattern of every rule file, on every rule example and the generic sentences."""
    assert disagreements.get(key, []) == []


def test_rule_engine_compiled_sets_agree_with_spacy_matcher():
    """The engine's own compiled sets (rules, context cues, impact groups) on the same texts."""
    engine = RuleEngine.from_dir(RULES / "prioridad")
    rules = [(r.spec.id, fold_pattern(p)) for r in engine.rules.values() for p in r.spec.patterns]
    context = [(CUE + kind, fold_pattern(p)) for kind, spec in read_yaml(RULES / "contexto.yaml").items()
               for p in spec["patterns"]]
    impact = [(ImpactFinder.KEY + g.name, fold_pattern(p)) for g in engine.impact.groups for p in g.patterns]
    assert engine.impact.patterns is engine.patterns  # one pass finds all three
    spacy_spans = spacy_matcher(rules + context + impact)
    fired = Counter()
    for body in TEXTS:
        text = clean("", body)
        doc = text.doc
        expected = spacy_spans(doc)
        assert compiled_spans(engine.patterns, doc) == expected, body
        # as the engine calls it: the cleaned message's own token texts and flags
        with_tokens = engine.patterns(doc, None, text.tokens, text.flags)
        assert {key: set(spans) for key, spans in with_tokens.items()} == expected, body
        fired.update(key.split(":")[0] if ":" in key else "regla" for key in expected)
    assert sum(fired.values()) > len(TEXTS) and fired["regla"] and fired["contexto"] and fired["impacto"]


def test_every_shipped_priority_rule_compiles_without_the_matcher():
    """A pattern left to spaCy's Matcher is tried at every token of every message (two such patterns cost more
    than all the other rules together); the shipped priority rules must compile to phrase sets and windows."""
    left = []
    for key, pattern in rule_patterns():
        compiled = CompiledPatterns(spanish().vocab)
        compiled.add(key, fold_pattern(pattern))
        if compiled.matcher_patterns and not key.startswith(("contexto", "impacto")):
            left.append(key)
    assert left == []
