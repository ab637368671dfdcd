"""Reading YAML configuration files into pydantic models, with every problem reported at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from classifier.errors import ConfigError, Errors

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path) -> Any:
    """Parse one YAML file, turning I/O and syntax errors into ``ConfigError``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Errors.C100.format(file=path, reason=exc.strerror or exc)]) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([Errors.C101.format(file=path, reason=str(exc).replace("\n", " "))]) from exc


def describe_validation(path: Path, exc: ValidationError, prefix: str = "") -> list[str]:
    """One line per pydantic error: file, dotted key path, reason."""
    problems = []
    for err in exc.errors():
        loc = prefix + ".".join(str(p) for p in err["loc"])
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown key (check its spelling)"
        elif "input" in err and err["type"] not in ("missing",):
            reason += f". Got {err['input']!r}"
        problems.append(Errors.C102.format(file=path, path=loc or "(top level)", reason=reason))
    return problems


def load_model(path: Path, model: type[M]) -> M:
    """Read ``path`` and validate it as ``model``; raise one ``ConfigError`` listing every problem."""
    data = read_yaml(path)
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigError(describe_validation(path, exc)) from None
