"""Error types and stable error codes, so every problem names its file, key and remedy."""

from __future__ import annotations


class Errors:
    """Message templates; a code is never reused for another meaning."""

    C100 = "{file}: no se puede leer el archivo: {reason}"
    C101 = "{file}: no es YAML válido: {reason}"
    C102 = "{file}: {path}: {reason}"
    C103 = "{file}: [{index}] \"{rule_id}\" > {path}: {reason}"
    C104 = ("{file}: el id de regla \"{rule_id}\" está repetido (también en {other}). "
            "Cada regla necesita un id propio.")
    C201 = ("no hay tiempo hábil de atención en los {days} días calendario siguientes a {start}: "
            "revise las suspensiones y los horarios en la configuración del calendario.")
    C202 = ("la fecha y hora {value!r} no lleva zona horaria: envíela con su desfase, "
            "p. ej. 2026-11-25T08:30:00-05:00")
    C203 = "prioridad desconocida {value!r}: use una de {allowed}"
    C204 = "el tiempo hábil que se suma no puede ser negativo; se recibió {value}"
    M301 = ("el archivo del modelo {file} no coincide con su manifiesto (sha256 {actual}, se esperaba {expected}): "
            "no se carga. Vuelva a entrenar con `python -m classifier train`.")
    M302 = "no hay manifiesto de modelos en {file}: entrene uno con `python -m classifier train`."
    M303 = "falta el archivo del modelo {file}: entrene uno con `python -m classifier train`."
    M304 = ("el modelo {version} no tiene archivo de servicio y fue guardado con otras versiones de las bibliotecas: "
            "el servicio no reentrena por su cuenta; ejecute `python -m classifier train`.")


class ClassifierError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigError(ClassifierError):
    """One or more problems in a configuration file, collected and reported together."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problema" + ("s" if count != 1 else "")
        super().__init__(head + "\n" + "\n".join(f"  {p}" for p in self.problems))


class CalendarError(ClassifierError):
    """A business-time calculation that cannot be done with the configured calendar."""


class InputError(ClassifierError, ValueError):
    """Bad input from a caller (a naive timestamp, an unknown priority, ...)."""


class ModelError(ClassifierError):
    """A model artefact that is missing, tampered with or unusable."""
