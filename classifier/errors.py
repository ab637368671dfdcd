"""Error types and stable error codes, so every problem names its file, key and remedy."""

from __future__ import annotations


class Errors:
    """Message templates; a code is never reused for another meaning."""

    C100 = "{file}: cannot read the file: {reason}"
    C101 = "{file}: not valid YAML: {reason}"
    C102 = "{file}: {path}: {reason}"
    C103 = "{file}: [{index}] \"{rule_id}\" > {path}: {reason}"
    C104 = "{file}: rule id \"{rule_id}\" is used twice (also in {other}). Rule ids must be unique."
    C201 = ("no open business time found within {days} calendar days after {start}: "
            "check the suspensions and hours in the calendar configuration.")
    C202 = ("timestamp {value!r} has no UTC offset: send it with an offset, "
            "e.g. 2026-11-25T08:30:00-05:00")
    C203 = "unknown priority {value!r}: expected one of {allowed}"
    C204 = "business time to add must not be negative, got {value}"
    M301 = ("model artefact {file} does not match its manifest (sha256 {actual}, expected {expected}): "
            "refusing to load it. Retrain with `python -m classifier train`.")
    M302 = "no model manifest at {file}: train one with `python -m classifier train`."
    M303 = "model artefact {file} is missing: train one with `python -m classifier train`."
    M304 = ("model {version} has no serving file and was saved by other library versions: the service does not "
            "retrain on its own; run `python -m classifier train`.")


class ClassifierError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigError(ClassifierError):
    """One or more problems in a configuration file, collected and reported together."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem" + ("s" if count != 1 else "")
        super().__init__(head + "\n" + "\n".join(f"  {p}" for p in self.problems))


class CalendarError(ClassifierError):
    """A business-time calculation that cannot be done with the configured calendar."""


class InputError(ClassifierError, ValueError):
    """Bad input from a caller (a naive timestamp, an unknown priority, ...)."""


class ModelError(ClassifierError):
    """A model artefact that is missing, tampered with or unusable."""
