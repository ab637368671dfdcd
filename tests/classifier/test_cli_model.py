"""``model list / promote / rollback / prune`` and the Spanish face of the command line, as a user runs them."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

import pytest

from classifier.cli import build_parser
from tests.conftest import ROOT

# Words that give away an English help text; none of them is a Spanish word.
ENGLISH = {"the", "and", "of", "to", "with", "for", "from", "only", "every", "which", "show", "this", "file",
           "default", "write", "add", "model", "models", "message", "messages", "train", "test", "split", "days"}


def run(args: list[str], models_dir=None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"CLASSIFIER_MODELS_DIR": str(models_dir)} if models_dir else {})}
    return subprocess.run([sys.executable, "-m", "classifier", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)


def fake_models(tmp_path) -> tuple:
    """A models folder with one version in every place of the manifest (dummy files: pruning never loads them)."""
    models = tmp_path / "models"
    models.mkdir()

    def entry(n: int) -> dict:
        version = f"2026120510000{n}-0000000{n}"
        for suffix in ("joblib", "npz"):
            (models / f"priority-{version}.{suffix}").write_bytes(b"x")
        (models / version).mkdir()
        (models / version / "confusion_matrix_candidate.png").write_bytes(b"\x89PNG")
        return {"model_version": version, "artefact": f"priority-{version}.joblib", "sha256": "0" * 64,
                "serving": {"artefact": f"priority-{version}.npz", "sha256": "0" * 64},
                "trained_at": f"2026-12-05T10:00:0{n}+00:00", "metrics": {"macro_f1": 0.8, "recall_muy_alta": 0.9}}

    e = {n: entry(n) for n in range(1, 7)}
    manifest = {"current": e[5], "previous": [e[4], e[2]], "rolled_back": [e[3]], "rejected": [e[6], e[1]]}
    (models / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    return models, e


def versions(models) -> dict[str, list[str]]:
    manifest = json.loads((models / "manifest.json").read_text("utf-8"))
    return {k: [x["model_version"] for x in ([v] if isinstance(v, dict) else v)] for k, v in manifest.items()}


def test_prune_keeps_current_previous_and_the_newest_and_removes_the_rest(tmp_path):
    models, e = fake_models(tmp_path)
    proc = run(["model", "prune", "--keep", "1"], models)
    assert proc.returncode == 0, proc.stderr
    gone, kept = (e[1], e[2], e[3]), (e[4], e[5], e[6])  # current 5, previous 4 (rollback), newest 6
    for x in gone:
        assert x["model_version"] in proc.stdout
        assert not (models / x["artefact"]).exists() and not (models / x["serving"]["artefact"]).exists()
        assert not (models / x["model_version"]).exists()
    for x in kept:
        assert x["model_version"] not in proc.stdout
        assert (models / x["artefact"]).exists() and (models / x["model_version"]).is_dir()
    assert versions(models) == {"current": [e[5]["model_version"]], "previous": [e[4]["model_version"]],
                                "rolled_back": [], "rejected": [e[6]["model_version"]]}
    again = run(["model", "prune", "--keep", "3"], models)
    assert again.returncode == 0 and "nada que eliminar" in again.stdout


@pytest.mark.parametrize("keep", ["0", "-2"])
def test_prune_refuses_to_keep_fewer_than_one(tmp_path, keep):
    models, _ = fake_models(tmp_path)
    before = versions(models)
    proc = run(["model", "prune", "--keep", keep], models)
    assert proc.returncode == 2
    assert "--keep" in proc.stderr and "al menos 1" in proc.stderr, proc.stderr
    assert versions(models) == before and len(list(models.glob("*.joblib"))) == 6


def test_model_list_says_where_each_version_is_in_spanish(tmp_path):
    models, e = fake_models(tmp_path)
    proc = run(["model", "list"], models)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    status = {v["model_version"]: next(line.split()[0] for line in lines if v["model_version"] in line)
              for v in e.values()}
    assert status == {e[5]["model_version"]: "actual", e[4]["model_version"]: "anterior",
                      e[2]["model_version"]: "anterior", e[3]["model_version"]: "revertido",
                      e[6]["model_version"]: "rechazado", e[1]["model_version"]: "rechazado"}


def test_model_errors_are_spanish_and_name_the_way_out(tmp_path):
    models, _ = fake_models(tmp_path)
    missing = run(["model", "promote", "no-existe"], models)
    assert missing.returncode == 2 and "no existe la versión" in missing.stderr and "model list" in missing.stderr
    manifest = json.loads((models / "manifest.json").read_text("utf-8"))
    (models / "manifest.json").write_text(json.dumps({"current": manifest["current"]}), "utf-8")
    alone = run(["model", "rollback"], models)
    assert alone.returncode == 2 and "no hay un modelo anterior" in alone.stderr


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def _texts(parser: argparse.ArgumentParser):
    yield parser.prog, parser.description or ""
    for action in parser._actions:
        yield f"{parser.prog} {'/'.join(action.option_strings) or action.dest}", action.help or ""
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield f"{parser.prog} {choice.dest}", choice.help or ""


def _prose(text: str) -> set[str]:
    """The plain words of a help text: without `code`, paths, file names and CONSTANT_NAMES."""
    tokens = re.sub(r"`[^`]*`", " ", text).split()
    return {w.strip("(),;:") for w in tokens if not re.search(r"[_./A-Z]", w)}


def test_every_help_text_is_spanish():
    english = [(where, text) for parser in _parsers(build_parser()) for where, text in _texts(parser)
               if ENGLISH & _prose(text)]
    assert not english, "\n".join(f"{where}: {text}" for where, text in english)
    commands = [p for p in _parsers(build_parser()) if p.prog != "python -m classifier"]
    assert all(p.description for p in commands), [p.prog for p in commands if not p.description]


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["model", "prune", "--help"]])
def test_help_screens_speak_spanish(args):
    proc = run(args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("uso: ") and "opciones:" in proc.stdout and "muestra esta ayuda" in proc.stdout
    assert "usage:" not in proc.stdout and "show this help" not in proc.stdout


@pytest.mark.parametrize("args, words", [
    (["model", "prune", "--keep", "muchos"], ["argumento --keep", "entero"]),
    (["model", "desconocido"], ["argumento", "no válida", "elija entre"]),
    (["model"], ["faltan los argumentos"]),
    (["score", "--batch-size"], ["se esperaba un argumento"]),
    (["sla", "--otra"], ["argumentos no reconocidos"]),
])
def test_a_bad_command_line_is_answered_in_spanish_with_exit_2(args, words):
    proc = run(args)
    assert proc.returncode == 2 and proc.stderr.startswith("uso: ")
    assert all(w in proc.stderr for w in words), proc.stderr
