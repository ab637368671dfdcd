"""Field errors in Spanish: pydantic's error types (stable identifiers) with the words an API user reads."""

from __future__ import annotations

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
