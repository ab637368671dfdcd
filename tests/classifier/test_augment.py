"""Altered training copies change how a message is written, never what it says or its label."""

from __future__ import annotations

import random
import re

import pytest
import yaml

from classifier.augment import STYLES, Restyler
from classifier.corpus import CorpusRow
from classifier.model_input import CourtesyFile
from tests.conftest import ROOT

RESTYLE = Restyler.from_courtesy(CourtesyFile(**yaml.safe_load((ROOT / "rules/estilo.yaml").read_text("utf-8"))))
ROW = CorpusRow(id="x-1", channel="email", subject="Plataforma caída",
                body="Buenos días,\nDesde las 7 ningún docente puede ingresar. ¿Qué pasa?", label="muy_alta",
                impact="grupo_20_o_mas", request_type="acceso", product="academico", source="hand", group="g-x-1",
                split="train", style="correo")


def test_spoken_copy_is_one_lower_case_line_without_punctuation():
    subject, body = RESTYLE(ROW.subject, ROW.body, "hablado", random.Random(0))
    assert subject == "" and "\n" not in body and body == body.lower()
    assert not re.search(r"[^\w\s]", body) and "docente" in body and "ingresar" in body


def test_capitals_and_formal_copies_keep_every_word():
    subject, body = RESTYLE(ROW.subject, ROW.body, "mayusculas", random.Random(0))
    assert body == ROW.body.upper() and subject == ROW.subject.upper()
    subject, body = RESTYLE(ROW.subject, ROW.body, "formal", random.Random(0))
    assert ROW.body.strip() in body and subject == ROW.subject


def test_chat_copy_keeps_most_words():
    _, body = RESTYLE(ROW.subject, ROW.body, "chat", random.Random(1))
    original = set(re.findall(r"\w+", "plataforma caida desde las ningun docente puede ingresar"))
    assert len(original & set(re.findall(r"\w+", body.lower()))) >= len(original) - 2


def test_copies_keep_label_group_and_style_and_are_reproducible():
    a = RESTYLE.copies([ROW], 3, seed=5)
    b = RESTYLE.copies([ROW], 3, seed=5)
    assert [r.body for r in a] == [r.body for r in b] and len(a) == 3
    assert {(r.label, r.group, r.style, r.split) for r in a} == {("muy_alta", "g-x-1", "correo", "train")}
    assert all(r.source == "variant-of:x-1" and r.id.startswith("x-1~") for r in a)


def test_unknown_style_is_refused():
    with pytest.raises(ValueError, match="unknown style"):
        RESTYLE("", "hola", "gotico", random.Random(0))
    assert "hablado" in STYLES
