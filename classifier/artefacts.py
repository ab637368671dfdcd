"""Model artefacts on disk: the manifest, hash checks, saving a trained model and loading the one to serve.

Each version is two files, both hashed in ``manifest.json``: ``priority-<version>.npz``, the ``ServingModel`` a
worker loads (plain arrays, no pickle, no scikit-learn import), and ``priority-<version>.joblib``, the fitted
estimator for inspection and retraining. Nothing is loaded whose sha256 differs from the manifest's. A folder
``<version>/`` beside them holds what ``train`` reported about it (verdict, confusion matrices); it goes with them.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from classifier.errors import Errors, ModelError
from classifier.serving import ServingModel

LIBRARIES = ("scikit-learn", "numpy", "scipy", "spacy", "joblib")
VERSION = re.compile(r"\d{14}-[0-9a-f]{8}")  # what ``save_model`` names a version: UTC time, data hash
STATUS = {"current": "actual", "previous": "anterior", "rolled_back": "revertido", "rejected": "rechazado"}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str | None]:
    versions = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    return versions


@dataclass
class LoadedModel:
    """A verified model and its manifest entry."""

    model: ServingModel  # or, for versions saved before serving files existed, the fitted estimator
    manifest: dict

    @property
    def version(self) -> str:
        return self.manifest["model_version"]


def save_model(models_dir: Path, bundle: dict, *, training_data_sha256: str, metrics: dict, params: dict,
               promote: bool = True, keep_rejected: int | None = None) -> dict:
    """Write ``priority-<version>.joblib`` and ``.npz``; with ``promote`` make it current in ``manifest.json``.
    Earlier models are kept (``previous``, newest first) so ``model rollback`` can restore them."""
    import joblib  # training only: serving never imports it

    served = bundle["priority"].serving()  # first: a model that cannot be served leaves no files behind
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    version = f"{datetime.now(timezone.utc):%Y%m%d%H%M%S}-{training_data_sha256[:8]}"
    artefact = models_dir / f"priority-{version}.joblib"
    joblib.dump(bundle, artefact, compress=3)
    serving = models_dir / f"priority-{version}.npz"
    served.save(serving)
    entry = {
        "model_version": version,
        "artefact": artefact.name,
        "sha256": file_sha256(artefact),
        "serving": {"artefact": serving.name, "sha256": file_sha256(serving)},
        "training_data_sha256": training_data_sha256,
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "libraries": library_versions(),
        "params": params,
        "metrics": metrics,
    }
    manifest_path = models_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text("utf-8")) if manifest_path.exists() else {}
    write_manifest(models_dir, with_entry(manifest, entry, promote=promote))
    if not promote and keep_rejected is not None:
        drop_rejected(models_dir, keep_rejected)
    return entry


def drop_rejected(models_dir: Path, keep: int) -> list[dict]:
    """Keep the ``keep`` newest refused candidates; the older ones leave the manifest and their files go too."""
    manifest, dropped = trimmed_rejected(read_manifest(models_dir), keep)
    write_manifest(models_dir, manifest)
    for old in dropped:
        remove_files(models_dir, old, manifest)
    return dropped


# ------------------------------------------------------------------ the manifest's moves, on a dict (files or store)
# A manifest is {"current": entry, "previous": [...], "rolled_back": [...], "rejected": [...]}, newest first. These
# functions only compute the next manifest: the folder (below) and the store (classifier/store/registry.py) apply
# the same moves, each around its own checks and writes.

def with_entry(manifest: dict, entry: dict, *, promote: bool) -> dict:
    """A new version added: current (the current one becomes previous) or, not promoted, the newest rejected."""
    if promote:
        previous = [manifest["current"], *manifest.get("previous", [])] if "current" in manifest else []
        return {**manifest, "current": entry, "previous": previous}
    return {**manifest, "rejected": [entry, *manifest.get("rejected", [])]}


def trimmed_rejected(manifest: dict, keep: int) -> tuple[dict, list[dict]]:
    """Only the ``keep`` newest refused candidates stay; also the ones that leave."""
    rejected = manifest.get("rejected", [])
    return {**manifest, "rejected": rejected[:keep]}, rejected[keep:]


def pruned(manifest: dict, keep: int) -> tuple[dict, list[tuple[str, dict]]]:
    """The current version, the previous one (what rollback restores) and the ``keep`` newest (by version, which
    starts with the training time) stay; also (where it was, entry) of each version that leaves."""
    if keep < 1:
        raise ValueError(f"--keep debe ser al menos 1 (se recibió {keep})")
    named = entries(manifest)
    kept = set(sorted({e["model_version"] for _, e in named}, reverse=True)[:keep])
    kept |= {e["model_version"] for e in [manifest.get("current"), *manifest.get("previous", [])[:1]] if e}
    manifest = {**manifest, **{key: [e for e in manifest.get(key, []) if e["model_version"] in kept]
                               for key in ("previous", "rolled_back", "rejected")}}
    return manifest, [(where, e) for where, e in named if e["model_version"] not in kept]


def promoted(manifest: dict, version: str, *, where: str) -> tuple[dict, dict]:
    """``version`` (previous, rolled back or rejected) made current, the current one becoming previous; the same
    manifest object back when it is current already. ``where`` names the registry in the error."""
    found = [(key, e) for key, e in entries(manifest) if e["model_version"] == version]
    if not found:
        raise ModelError(f"no existe la versión {version!r} en {where}: vea `python -m classifier model list`")
    key, entry = found[0]
    if key == "current":
        return manifest, entry
    rest = {k: [e for e in manifest.get(k, []) if e["model_version"] != version]
            for k in ("previous", "rolled_back", "rejected")}
    return {**manifest, **rest, "current": entry, "previous": [manifest["current"], *rest["previous"]]}, entry


def rolled_back(manifest: dict, *, where: str) -> tuple[dict, dict]:
    """The previous version made current again; the rolled-back one is kept under ``rolled_back``."""
    previous = manifest.get("previous", [])
    if not previous:
        raise ModelError(f"no hay un modelo anterior al que volver en {where}: `python -m classifier model list` "
                         "muestra las versiones y `model promote VERSIÓN` pone una en servicio")
    return {**manifest, "current": previous[0], "previous": previous[1:],
            "rolled_back": [manifest["current"], *manifest.get("rolled_back", [])]}, previous[0]


def serving_file(entry: dict) -> tuple[str, str]:
    """(file name, sha256) of what a worker loads for ``entry``: its ``.npz``, else (older versions) its estimator."""
    if "serving" in entry:
        return entry["serving"]["artefact"], entry["serving"]["sha256"]
    return entry["artefact"], entry["sha256"]


def artefact_files(entry: dict) -> list[tuple[str, str]]:
    """(file name, sha256) of every file of ``entry``: the estimator, and the ``.npz`` when it has one."""
    files = [(entry["artefact"], entry["sha256"])]
    return files + ([(entry["serving"]["artefact"], entry["serving"]["sha256"])] if "serving" in entry else [])


def version_dir(models_dir: Path, version: str) -> Path:
    """The folder of what was reported about ``version`` (created on demand)."""
    if not VERSION.fullmatch(version):
        raise ModelError(f"versión de modelo no válida: {version!r}")
    path = Path(models_dir) / version
    path.mkdir(parents=True, exist_ok=True)
    return path


def entries(manifest: dict) -> list[tuple[str, dict]]:
    """Every version the manifest names, with where: current, previous, rolled_back, rejected."""
    out = [("current", manifest["current"])] if "current" in manifest else []
    for key in ("previous", "rolled_back", "rejected"):
        out += [(key, e) for e in manifest.get(key, [])]
    return out


def remove_files(models_dir: Path, entry: dict, manifest: dict) -> list[str]:
    """Delete a version's files and folder unless the manifest still names them; the names deleted."""
    named = {name for _, e in entries(manifest) for name, _ in artefact_files(e)}
    removed = []
    for name, _ in artefact_files(entry):
        if name not in named and (Path(models_dir) / name).exists():
            (Path(models_dir) / name).unlink()
            removed.append(name)
    version = entry["model_version"]
    folder = Path(models_dir) / version
    if VERSION.fullmatch(version) and folder.is_dir() and version not in {e["model_version"] for _, e in
                                                                           entries(manifest)}:
        shutil.rmtree(folder)
        removed.append(version + "/")
    return removed


def list_models(models_dir: Path) -> list[tuple[str, dict]]:
    """(status, entry) for every version, current first."""
    return entries(read_manifest(models_dir))


def prune(models_dir: Path, keep: int) -> list[tuple[str, dict, list[str]]]:
    """Keep the current version, the previous one (what ``rollback`` restores) and the ``keep`` newest; the rest
    leave the manifest with their files and folders (``pruned``).

    Returns (where it was, entry, files removed) for each version removed.
    """
    manifest, removed = pruned(read_manifest(models_dir), keep)
    write_manifest(models_dir, manifest)
    return [(where, e, remove_files(models_dir, e, manifest)) for where, e in removed]


def promote(models_dir: Path, version: str) -> dict:
    """Make ``version`` (a previous, rolled-back or rejected one) current after checking its files; the current
    one becomes previous, so nothing is lost and ``rollback`` undoes it."""
    manifest = read_manifest(models_dir)
    changed, entry = promoted(manifest, version, where=str(Path(models_dir) / "manifest.json"))
    if changed is not manifest:
        load_model(models_dir, entry)  # refuse an artefact that fails its check
        write_manifest(models_dir, changed)
    return entry


def write_manifest(models_dir: Path, manifest: dict) -> None:
    """Replace ``manifest.json`` atomically (readers never see half a file; writers on one machine never share a
    temporary file)."""
    write_atomically(Path(models_dir) / "manifest.json",
                     (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file of its own in the same folder (mode as any new file, umask
    applied), then rename it into place."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def rollback(models_dir: Path) -> dict:
    """Make the previous model current again; the rolled-back one is kept under ``rolled_back``."""
    manifest, entry = rolled_back(read_manifest(models_dir), where=str(Path(models_dir) / "manifest.json"))
    load_model(models_dir, entry)  # refuse to switch to an artefact that fails its check
    write_manifest(models_dir, manifest)
    return entry


def read_manifest(models_dir: Path) -> dict:
    path = Path(models_dir) / "manifest.json"
    if not path.exists():
        raise ModelError(Errors.M302.format(file=path))
    return json.loads(path.read_text("utf-8"))


def _verified(models_dir: Path, name: str, sha256: str) -> Path:
    path = Path(models_dir) / name
    if not path.exists():
        raise ModelError(Errors.M303.format(file=path))
    actual = file_sha256(path)
    if actual != sha256:
        raise ModelError(Errors.M301.format(file=path, actual=actual[:12], expected=sha256[:12]))
    return path


def load_model(models_dir: Path, entry: dict | None = None) -> LoadedModel:
    """Load the current (or given) version's serving model only if its sha256 matches the manifest (a version
    saved before serving files existed loads its estimator, under the same check)."""
    entry = entry or read_manifest(models_dir)["current"]
    if "serving" in entry:
        return LoadedModel(ServingModel.load(_verified(models_dir, *serving_file(entry))), entry)
    if not versions_match(entry):
        raise ModelError(Errors.M304.format(version=entry.get("model_version")))
    return LoadedModel(load_estimator(models_dir, entry), entry)


def load_estimator(models_dir: Path, entry: dict | None = None):
    """The fitted scikit-learn estimator of the current (or given) version, only if its sha256 matches."""
    entry = entry or read_manifest(models_dir)["current"]
    path = _verified(models_dir, entry["artefact"], entry["sha256"])
    import joblib  # unpickling runs code: only after the hash check, and never on the serving path

    return joblib.load(path)["priority"]


def add_serving_file(models_dir: Path, entry: dict) -> dict:
    """The manifest entry of a version saved without a serving ``.npz``, with one exported next to it."""
    serving = Path(models_dir) / Path(entry["artefact"]).with_suffix(".npz").name
    load_estimator(models_dir, entry).serving().save(serving)
    return {**entry, "serving": {"artefact": serving.name, "sha256": file_sha256(serving)}}


def versions_match(entry: dict) -> bool:
    """True when the libraries that pickled the model are the ones installed now."""
    now = library_versions()
    return all(entry.get("libraries", {}).get(lib) == now.get(lib) for lib in ("scikit-learn", "numpy", "scipy"))


@dataclass
class FileRegistry:
    """The model registry as one machine's folder: ``manifest.json`` and the versions' files."""

    models_dir: Path

    def list(self) -> list[tuple[str, dict]]:
        return list_models(self.models_dir)

    def promote(self, version: str) -> dict:
        return promote(self.models_dir, version)

    def rollback(self) -> dict:
        return rollback(self.models_dir)

    def prune(self, keep: int) -> list[tuple[str, dict, list[str]]]:
        return prune(self.models_dir, keep)


class ManifestWatch:
    """A worker's view of a models folder: the current entry when ``manifest.json`` changed since the last look
    (by file time)."""

    source = "files"
    listening = False  # no notifications: the folder is checked every CLASSIFIER_MODEL_CHECK_SECONDS

    def __init__(self, models_dir: Path):
        self.models_dir = Path(models_dir)
        self.mtime: float | None = None

    def changed(self, *, force: bool = False) -> dict | None:
        try:
            mtime = (self.models_dir / "manifest.json").stat().st_mtime
        except OSError:
            return None
        if not force and mtime == self.mtime:
            return None
        self.mtime = mtime
        return read_manifest(self.models_dir)["current"]

    def current_version(self) -> str | None:
        return read_manifest(self.models_dir)["current"]["model_version"]

    def forget(self) -> None:
        """Look again next time even if nothing changed (a candidate was dropped)."""
        self.mtime = None

    def status(self) -> dict:
        return {"source": self.source}
