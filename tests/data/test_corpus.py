"""The corpus passes its own check, and the plain reference model clears the bar on the test split."""

from __future__ import annotations

import pytest

from classifier.corpus import check_corpus, load_rows
from classifier.reference import evaluate_reference
from tests.conftest import ROOT

CORPUS = ROOT / "data/corpus.jsonl"


def test_corpus_check_passes():
    report = check_corpus(CORPUS, "corpus")
    assert report.ok, report.problems
    assert report.summary["rows"] >= 2000 and min(report.summary["label"].values()) >= 400
    assert report.summary["test_share"] >= 0.20 and report.summary["near_duplicate_share"] <= 0.02


def test_test_groups_never_appear_in_train():
    rows = load_rows(CORPUS)
    train = {r.group for r in rows if r.split == "train"}
    assert not train & {r.group for r in rows if r.split == "test"}


def test_reference_model_reaches_macro_f1_085_on_test():
    assert evaluate_reference(load_rows(CORPUS))["macro_f1"] >= 0.85


def test_datasheet_figures_match_the_check():
    summary = check_corpus(CORPUS, "corpus").summary
    datasheet = (ROOT / "data/README.md").read_text("utf-8")
    assert f"{summary['rows']:,}".replace(",", " ") in datasheet or str(summary["rows"]) in datasheet
    for label, count in summary["label"].items():
        assert f"| `{label}` | {count} |" in datasheet, label


def test_independent_validation_set_is_well_formed_and_balanced():
    from collections import Counter

    from classifier.corpus import read_corpus

    rows, problems = read_corpus(ROOT / "data/external.jsonl")
    assert not problems
    assert len(rows) == 250 and set(Counter(r.label for _, r in rows).values()) == {50}
    assert all(r.split == "test" for _, r in rows)


def _row(i: int, label: str, body: str, style: str = "chat", product: str = "general") -> dict:
    return {"id": f"t-{i:04d}", "channel": "chat", "subject": "", "body": body, "label": label,
            "impact": "desconocido", "request_type": "incompleto" if label == "muy_baja" else "consulta",
            "product": product, "source": "hand", "group": f"g-{i}", "split": "test" if i % 5 == 0 else "train",
            "style": style}


def _write(path, rows) -> None:
    import json

    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def test_shortcut_check_fails_a_corpus_whose_labels_show_in_length_and_greetings(tmp_path):
    """Built to fail: incomplete messages are short greetings, every other label a long plain request."""
    from classifier.corpus import format_report

    rows, labels = [], ["muy_alta", "alta", "media", "baja", "muy_baja"]
    for i in range(500):
        label = labels[i % 5]
        length = {"muy_alta": 60, "alta": 35, "media": 15, "baja": 8, "muy_baja": 2}[label]
        greeting = "hola buenas " if label in ("muy_baja", "baja") else ""
        body = greeting + " ".join(f"palabra{(i * 7 + k) % 97}" for k in range(length + i % 3))
        if label in ("muy_alta", "alta"):
            body = body.upper() + "!!"
        rows.append(_row(i, label, body, product="ext_salud" if i % 3 == 0 else "general"))
    path = tmp_path / "corpus.jsonl"
    _write(path, rows)
    report = check_corpus(path, "corpus")
    assert report.summary["shortcut_macro_f1"] > 0.40
    assert any("la forma sola (longitud, saludos, puntuación…) alcanza macro-F1" in p for p in report.problems)
    printed = format_report(report)
    assert "atajo de forma" in printed and "saludo" in printed and "muy_baja" in printed


def test_shortcut_check_passes_when_look_and_label_are_independent(tmp_path):
    import random

    rng = random.Random(0)
    labels = ["muy_alta", "alta", "media", "baja", "muy_baja"]
    rows = []
    for i in range(500):
        body = ("hola " if rng.random() < 0.4 else "") + " ".join(f"w{rng.randrange(50)}" for _ in range(rng.randint(2, 60)))
        rows.append(_row(i, labels[i % 5], body + ("?" if rng.random() < 0.3 else "")))
    path = tmp_path / "corpus.jsonl"
    _write(path, rows)
    report = check_corpus(path, "corpus")
    assert report.summary["shortcut_macro_f1"] <= 0.40
    assert not any("la forma sola" in p for p in report.problems)


def test_the_corpus_keeps_labels_apart_from_style_and_domain():
    summary = check_corpus(CORPUS, "corpus").summary
    assert summary["shortcut_macro_f1"] <= 0.40
    assert min(summary["outside_share"].values()) >= 0.15
    assert len(summary["style"]) >= 6 and all(min(c.values()) >= 20 for c in summary["style"].values())


def test_evaluation_files_may_carry_only_the_message_and_its_label(tmp_path):
    from classifier.corpus import load_labelled

    path = tmp_path / "real.jsonl"
    path.write_text('{"id": "r-1", "channel": "chat", "subject": "", "body": "quiero cambiar la clave", '
                    '"label": "media", "impact": "un_usuario", "intent": "X", "why": "how-to"}\n\n'
                    '{"id": "r-2", "body": "hola", "label": "muy_baja"}\n', "utf-8")
    rows = load_labelled(path)
    assert [r.label for r in rows] == ["media", "muy_baja"] and rows[1].channel == "chat"
    path.write_text('{"id": "r-1", "body": "x", "label": "urgente"}\n', "utf-8")
    with pytest.raises(ValueError, match="línea 1: label"):
        load_labelled(path)


def test_merging_new_rows_keeps_the_corpus_and_draws_whole_groups(tmp_path):
    from classifier.corpus import CorpusRow, merge_new_rows

    old = [CorpusRow.model_validate(_row(i, "baja", f"mensaje numero {i} sobre la factura del mes")) for i in range(10)]
    words = "factura nota reporte boletin pago recibo cuenta saldo clave usuario".split()
    new = [{k: v for k, v in _row(100 + i, "alta", " ".join(words[(i * j) % 10] + str(i + j) for j in range(9)))
            .items() if k not in ("group", "split")} for i in range(50)]
    new.append({**new[0], "id": "t-9999"})  # the same text again: it joins the first one's group
    merged, dropped = merge_new_rows(old, new, seed=1)
    assert merged[:10] == old and len(merged) == 61 and not dropped
    by_id = {r.id: r for r in merged}
    assert by_id["t-9999"].group == by_id["t-0100"].group and by_id["t-9999"].split == by_id["t-0100"].split
    assert 5 <= sum(r.split == "test" for r in merged[10:]) <= 18
    # A new row close to corpus rows of both splits cannot go anywhere without leaking: it is left out.
    twin = {**new[0], "id": "t-8888", "body": old[0].body}
    old[5] = old[5].model_copy(update={"body": old[0].body, "split": "test"})
    old[0] = old[0].model_copy(update={"split": "train"})
    assert merge_new_rows(old, [twin])[1] == ["t-8888"]
    with pytest.raises(ValueError, match="ya está en el corpus"):
        merge_new_rows(old, [{**new[1], "id": "t-0001"}])


@pytest.mark.parametrize("flipped, ok", [(30, False), (2, True)])
def test_feedback_that_relabels_many_corpus_texts_is_refused(tmp_path, flipped, ok):
    """Agents may correct a corpus label now and then; a file relabelling the corpus wholesale is not feedback."""
    from classifier.corpus import format_report

    corpus = load_rows(CORPUS)
    other = {"muy_alta": "baja", "alta": "media", "media": "baja", "baja": "alta", "muy_baja": "media"}
    rows = [{"id": f"fb-{i}", "channel": r.channel, "subject": r.subject, "body": r.body, "label": other[r.label],
             "impact": "desconocido", "request_type": "otro", "product": "general", "source": "agent-feedback",
             "group": f"fb-{i}", "split": "train"} for i, r in enumerate(corpus[:flipped])]
    rows += [_row(1000 + i, "baja", f"gracias, ya recibimos la factura número {i} de este mes") for i in range(30)]
    for r in rows[flipped:]:
        r.update(source="agent-feedback", split="train", request_type="otro")
    path = tmp_path / "feedback.jsonl"
    _write(path, rows)
    report = check_corpus(path, "feedback", reference=CORPUS)
    assert report.contradicts_corpus == flipped
    assert report.ok is ok, report.problems
    assert f"reetiquetan textos del corpus: {flipped}" in format_report(report)
