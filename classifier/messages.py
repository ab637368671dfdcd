"""Libraries' errors in Spanish: pydantic's error types (stable identifiers), the json module's, PyYAML's and the
system's, in the words a reader sees, whether an API caller (``api``), the data team (``data check``, JSON Lines
commands) or the policy owner editing ``rules/*.yaml`` and ``data/customers.yaml`` (``classifier.yamlfile``)."""

from __future__ import annotations

import errno
import json
import re

SPANISH = {
    "missing": "campo obligatorio",
    "extra_forbidden": "campo no permitido",
    "string_type": "debe ser texto",
    "string_too_long": "texto demasiado largo (máximo {max_length} caracteres)",
    "string_too_short": "texto demasiado corto (mínimo {min_length} caracteres)",
    "string_pattern_mismatch": "formato no válido",
    "literal_error": "valor no permitido: use {expected}",
    "enum": "valor no permitido: use {expected}",
    "int_type": "debe ser un número entero",
    "int_parsing": "debe ser un número entero",
    "int_from_float": "debe ser un número entero",
    "float_type": "debe ser un número",
    "float_parsing": "debe ser un número",
    "bool_type": "debe ser true o false",
    "bool_parsing": "debe ser true o false",
    "greater_than": "debe ser mayor que {gt}",
    "greater_than_equal": "debe ser mayor o igual que {ge}",
    "less_than": "debe ser menor que {lt}",
    "less_than_equal": "debe ser menor o igual que {le}",
    "list_type": "debe ser una lista",
    "dict_type": "debe ser un objeto JSON",
    "model_type": "debe ser un objeto JSON",
    "model_attributes_type": "debe ser un objeto JSON",
    "too_long": "demasiados elementos (máximo {max_length})",
    "too_short": "faltan elementos (mínimo {min_length})",
    "datetime_type": "debe ser una fecha y hora ISO 8601 con zona horaria",
    "datetime_parsing": "fecha y hora no válida: use ISO 8601 con zona horaria, p. ej. 2026-11-27T16:30:00-05:00",
    "datetime_from_date_parsing": "fecha y hora no válida: use ISO 8601 con zona horaria, p. ej. "
                                  "2026-11-27T16:30:00-05:00",
    "timezone_aware": "la fecha y hora debe llevar zona horaria (p. ej. -05:00)",
    "date_parsing": "fecha no válida: use AAAA-MM-DD",
    "date_from_datetime_parsing": "fecha no válida: use AAAA-MM-DD",
    "date_from_datetime_inexact": "fecha no válida: use AAAA-MM-DD",
    "date_type": "debe ser una fecha AAAA-MM-DD",
    "tuple_type": "debe ser una lista",
    "json_invalid": "JSON no válido",
    "value_error": "{error}",
}


def field_message(error: dict) -> str:
    """The Spanish message of one pydantic error (its own text when the type is not in the table)."""
    template = SPANISH.get(error.get("type", ""))
    if template is None:
        return str(error.get("msg", "valor no válido"))
    ctx = {k: str(v).replace(" or ", " o ") for k, v in (error.get("ctx") or {}).items()}
    try:
        text = template.format(**ctx)
    except (KeyError, IndexError):
        return str(error.get("msg", "valor no válido"))
    return text.removeprefix("Value error, ") if error.get("type") == "value_error" else text


# What Python's json module says when a text is not JSON.
_JSON = {
    "Expecting value": "falta un valor",
    "Expecting property name enclosed in double quotes": "se esperaba un nombre de campo entre comillas dobles",
    "Expecting ':' delimiter": "falta «:»",
    "Expecting ',' delimiter": "falta «,»",
    "Unterminated string starting at": "texto sin cerrar",
    "Invalid control character at": "carácter de control dentro de un texto",
    "Extra data": "sobra texto después del JSON",
    "Invalid \\escape": "secuencia de escape no válida",
    "Invalid \\uXXXX escape": "secuencia \\uXXXX no válida",
}


def json_message(exc: json.JSONDecodeError) -> str:
    """What is wrong with a JSON text and where: 'falta «,» en la columna 4'."""
    return f"{_JSON.get(exc.msg, exc.msg)} en la columna {exc.colno}"


# The usual reasons a file cannot be read; others keep the system's words.
_OS = {errno.ENOENT: "no existe", errno.EACCES: "sin permiso de lectura", errno.EISDIR: "es una carpeta",
       errno.ENOTDIR: "una parte de la ruta no es una carpeta"}


def os_message(exc: OSError) -> str:
    """Why a file could not be read: 'no existe', 'sin permiso de lectura'..."""
    return _OS.get(exc.errno, exc.strerror or str(exc))


# PyYAML's usual complaints (the rest keep PyYAML's words), each a regex and a template.
_YAML = (
    (r"mapping values are not allowed here",
     "aquí no puede ir «clave: valor» (¿faltan comillas o cambia la sangría?)"),
    (r"found character (.+) that cannot start any token", "el carácter {0} no puede empezar un valor (use espacios, "
                                                          "no tabuladores, o ponga el texto entre comillas)"),
    (r"found unexpected end of stream", "el archivo termina antes de cerrar unas comillas"),
    (r"found undefined alias (.+)", "el alias {0} no está definido"),
    (r"could not find expected ':'", "falta «:» después de una clave"),
    (r"expected (.+), but (?:found|got) (.+)", "se esperaba {0} y se encontró {1} (revise la sangría, las comillas y "
                                               "los corchetes)"),
)


def yaml_message(exc: Exception) -> str:
    """Where a YAML text breaks (line and column, counted from 1) and what is wrong there."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or not problem:
        return " ".join(str(exc).split())
    for pattern, template in _YAML:
        found = re.fullmatch(pattern, problem)
        if found:
            problem = template.format(*(g.replace(" or ", " o ") for g in found.groups()))
            break
    return f"línea {mark.line + 1}, columna {mark.column + 1}: {problem}"
