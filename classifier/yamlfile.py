"""Reading YAML configuration files into pydantic models, with every problem reported at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from classifier.errors import ConfigError, Errors
from classifier.messages import field_message, os_message, yaml_message

M = TypeVar("M", bound=BaseModel)
TOP_LEVEL = "(nivel superior)"  # the key path of a problem with the whole file


def read_yaml(path: Path) -> Any:
    """Parse one YAML file, turning I/O, encoding and syntax errors into ``ConfigError``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Errors.C100.format(file=path, reason=os_message(exc))]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([Errors.C100.format(file=path, reason=f"no está en UTF-8 (byte {exc.start})")]) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([Errors.C101.format(file=path, reason=yaml_message(exc))]) from exc


def describe_validation(path: Path, exc: ValidationError, prefix: str = "") -> list[str]:
    """One line per pydantic error: file, dotted key path, reason in Spanish (the API's table of error types)."""
    problems = []
    for err in exc.errors():
        loc = prefix + ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            reason = "clave desconocida (revise cómo está escrita)"
        else:
            reason = field_message(err)
            if "input" in err and err["type"] not in ("missing", "value_error"):  # our checks name the value
                reason += f"; se recibió {err['input']!r}"
        problems.append(Errors.C102.format(file=path, path=loc or TOP_LEVEL, reason=reason))
    return problems


def load_model(path: Path, model: type[M]) -> M:
    """Read ``path`` and validate it as ``model``; raise one ``ConfigError`` listing every problem."""
    data = read_yaml(path)
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigError(describe_validation(path, exc)) from None
