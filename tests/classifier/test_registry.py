"""The model registry in the store, on SQLite and PostgreSQL: a folder moves in, every machine gets a verified copy,
promote / rollback / prune / a trained candidate move the store, bytes that fail their sha256 are never written
nor served, and PostgreSQL announces each change."""

from __future__ import annotations

import shutil

import psycopg
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from classifier.artefacts import (artefact_files, entries, file_sha256, list_models, load_model, read_manifest,
                                  with_entry, write_manifest)
from classifier.errors import ModelError
from classifier.store.db import engine_for, sessions, upgrade
from classifier.store.registry import CHANNEL, StoreRegistry, StoreWatch
from classifier.store.tables import ModelRegistryLogRow, ModelRegistryRow, ModelVersionRow
from tests.conftest import ROOT


def shipped_models(tmp_path, folder: str = "files"):
    """Two versions of the shipped models folder, current and previous, with their files and a manifest of them."""
    shipped = read_manifest(ROOT / "models")
    manifest = {"current": shipped["current"], "previous": shipped["previous"][:1]}
    out = tmp_path / folder
    out.mkdir()
    for _, entry in entries(manifest):
        for name, _ in artefact_files(entry):
            shutil.copy(ROOT / "models" / name, out / name)
    write_manifest(out, manifest)
    return out


def versions(pairs) -> list[tuple[str, str]]:
    return [(where, entry["model_version"]) for where, entry in pairs]


def copied_version(folder, entry: dict, version: str) -> dict:
    """Another version in ``folder`` with the files of ``entry`` under its own names (real files, real hashes)."""
    out = {**entry, "model_version": version, "artefact": f"priority-{version}.joblib",
           "serving": {**entry["serving"], "artefact": f"priority-{version}.npz"}}
    shutil.copy(folder / entry["artefact"], folder / out["artefact"])
    shutil.copy(folder / entry["serving"]["artefact"], folder / out["serving"]["artefact"])
    return out


@pytest.fixture
def store(database_url, tmp_path):
    """(the store's URL, a folder registry exported into it, its manifest)."""
    upgrade(database_url)
    files = shipped_models(tmp_path)
    stored, before = StoreRegistry(database_url, tmp_path / "exporter").export_files(files)
    assert before is None and len(stored) == 2
    return database_url, files, read_manifest(files)


def test_a_folder_moves_into_the_store_and_any_machine_gets_a_verified_copy(store, tmp_path):
    url, files, manifest = store
    machine = StoreRegistry(url, tmp_path / "machine-b")
    assert versions(machine.list()) == versions(list_models(files))
    assert machine.manifest() == manifest  # entries whole: metrics, parameters, libraries, sha256s
    assert machine.export_files(files) == ([], manifest["current"]["model_version"])  # once only

    head, entry = machine.materialise()
    assert entry == manifest["current"] and head.current == entry["model_version"] and head.revision == 1
    copy = tmp_path / "machine-b"
    assert read_manifest(copy) == manifest
    served = copy / entry["serving"]["artefact"]
    assert file_sha256(served) == entry["serving"]["sha256"]
    assert sorted(p.name for p in copy.iterdir()) == sorted([served.name, "manifest.json"])  # only what it serves
    assert load_model(copy).version == entry["model_version"]


def test_promote_and_rollback_move_the_store_and_are_logged(store, tmp_path):
    url, _, manifest = store
    current, previous = manifest["current"]["model_version"], manifest["previous"][0]["model_version"]
    registry = StoreRegistry(url, tmp_path / "machine-a")
    assert registry.promote(previous)["model_version"] == previous
    assert versions(registry.list()) == [("current", previous), ("previous", current)]
    assert registry.rollback()["model_version"] == current
    assert versions(registry.list()) == [("current", current), ("rolled_back", previous)]
    with pytest.raises(ModelError, match="no hay un modelo anterior"):
        registry.rollback()
    assert registry.promote(current)["model_version"] == current  # already current: nothing moves
    with pytest.raises(ModelError, match="no existe la versión"):
        registry.promote("20990101000000-00000000")
    with sessions(url)() as session:
        log = session.execute(select(ModelRegistryLogRow.revision, ModelRegistryLogRow.action,
                                     ModelRegistryLogRow.version).order_by(ModelRegistryLogRow.id)).all()
    assert [tuple(r) for r in log] == [(1, "exported", current), (2, "promoted", previous),
                                       (3, "rolled_back", current)]
    assert registry.head().revision == 3


def tamper(url: str, version: str) -> None:
    with engine_for(url).begin() as conn:
        conn.execute(update(ModelVersionRow).where(ModelVersionRow.version == version)
                     .values(serving=b"not the bytes the registry hashed"))


def point_at(url: str, version: str) -> None:
    """The registry row changed by hand (as a broken tool or an intruder could), past every check of the CLI."""
    with engine_for(url).begin() as conn:
        conn.execute(update(ModelRegistryRow).values(current=version, previous=[],
                                                     revision=ModelRegistryRow.revision + 1))


def test_bytes_that_fail_their_sha256_are_never_written_nor_served(store, tmp_path):
    url, _, manifest = store
    current, previous = manifest["current"]["model_version"], manifest["previous"][0]["model_version"]
    tamper(url, previous)
    cli = StoreRegistry(url, tmp_path / "machine-c")
    with pytest.raises(ModelError, match="no coincide"):
        cli.rollback()  # `model rollback` refuses: the store keeps its current model
    assert cli.head().current == current and cli.head().revision == 1
    assert not (tmp_path / "machine-c" / manifest["previous"][0]["serving"]["artefact"]).exists()

    point_at(url, previous)
    worker = StoreWatch(StoreRegistry(url, tmp_path / "machine-d"))
    with pytest.raises(ModelError, match="no coincide"):
        worker.changed()
    assert not (tmp_path / "machine-d").exists() or not any((tmp_path / "machine-d").iterdir())
    assert worker.changed() is None  # the same revision is not fetched again
    point_at(url, current)
    assert worker.changed()["model_version"] == current


def test_prune_removes_versions_from_the_store_and_the_copy(database_url, tmp_path):
    upgrade(database_url)
    files = shipped_models(tmp_path)
    manifest = read_manifest(files)
    old = [copied_version(files, manifest["current"], f"2026110{n}000000-0000000{n}") for n in (1, 2)]
    write_manifest(files, {**manifest, "rejected": old})
    StoreRegistry(database_url, tmp_path / "exporter").export_files(files)
    registry = StoreRegistry(database_url, tmp_path / "machine")
    registry.materialise()
    removed = registry.prune(1)
    assert sorted(e["model_version"] for _, e, _ in removed) == sorted(e["model_version"] for e in old)
    with sessions(database_url)() as session:
        stored = set(session.scalars(select(ModelVersionRow.version)))
    assert stored == {manifest["current"]["model_version"], manifest["previous"][0]["model_version"]}
    assert registry.prune(1) == []


def test_a_trained_candidate_joins_the_store_current_or_rejected(store, tmp_path):
    url, _, manifest = store
    machine = tmp_path / "trainer"
    registry = StoreRegistry(url, machine)
    registry.checkout()  # what `train` does first: the folder mirrors the store
    assert read_manifest(machine) == manifest
    good = copied_version_from_store(registry, machine, manifest, "20261206090000-aaaaaaaa")
    write_manifest(machine, with_entry(read_manifest(machine), good, promote=True))  # as save_model would
    registry.publish(good["model_version"], promote=True, keep_rejected=2)
    assert versions(registry.list()) == [("current", good["model_version"]),
                                         ("previous", manifest["current"]["model_version"]),
                                         ("previous", manifest["previous"][0]["model_version"])]
    assert read_manifest(machine)["current"] == good  # the folder mirrors the store again

    refused = copied_version_from_store(registry, machine, manifest, "20261206100000-bbbbbbbb")
    write_manifest(machine, with_entry(read_manifest(machine), refused, promote=False))
    registry.publish(refused["model_version"], promote=False, keep_rejected=0)  # retraining.keep_rejected: 0
    assert registry.head().current == good["model_version"]
    with sessions(url)() as session:
        assert session.get(ModelVersionRow, refused["model_version"]) is None
        assert session.scalar(select(func.count()).select_from(ModelVersionRow)) == 3


def copied_version_from_store(registry, machine, manifest, version) -> dict:
    registry.materialise()
    source = {**manifest["current"]}
    shutil.copy(ROOT / "models" / source["artefact"], machine / source["artefact"])  # the estimator is not served
    return copied_version(machine, source, version)


def test_training_refuses_a_folder_of_its_own_while_the_store_is_empty(database_url, tmp_path):
    upgrade(database_url)
    files = shipped_models(tmp_path)
    before = read_manifest(files)
    with pytest.raises(ModelError, match="export-to-store"):
        StoreRegistry(database_url, files).checkout()
    assert read_manifest(files) == before
    StoreRegistry(database_url, tmp_path / "empty").checkout()  # no model anywhere: the first one may be trained


def test_every_change_is_announced_on_postgresql(fresh_postgres_url, tmp_path):
    url = fresh_postgres_url
    upgrade(url)
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        registry = StoreRegistry(url, tmp_path / "machine")
        registry.export_files(shipped_models(tmp_path))
        registry.rollback()
        payloads = [n.payload for n in listener.notifies(timeout=2, stop_after=2)]
    assert payloads == ["1", "2"]
