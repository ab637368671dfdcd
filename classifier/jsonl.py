"""The JSON Lines contract every command keeps: one result line per input line, in order, with its id."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from classifier.errors import ClassifierError
from classifier.messages import json_message


def read_lines(stream: IO[str]) -> Iterator[tuple[int, Any | Exception]]:
    """(line number, parsed object or the parse error) for every non-blank input line."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line.rstrip("\r\n"))  # a column on this line, not on the next
        except json.JSONDecodeError as exc:
            yield number, ValueError(f"línea {number}: no es JSON válido ({json_message(exc)})")
        except RecursionError:
            yield number, ValueError(f"línea {number}: no es JSON válido (demasiados niveles anidados)")


def error_line(item: Any, error: Exception | str) -> dict:
    """``{"id", "error"}`` for an input that could not be answered."""
    item_id = item.get("id") if isinstance(item, dict) else None
    return {"id": item_id, "error": str(error)}


def run_lines(
    handle: Callable[[dict], dict],
    *,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> int:
    """Answer each input line with ``handle`` or an error object; always exit 0 once all are answered."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    lines: Iterable = read_lines(stdin)
    if progress is not None:
        lines = progress(lines)
    for _number, item in lines:
        if isinstance(item, Exception):
            out = error_line(None, item)
        elif not isinstance(item, dict):
            out = error_line(None, f"se esperaba un objeto JSON, llegó {type(item).__name__}")
        else:
            try:
                out = handle(item)
            except (ClassifierError, ValueError, TypeError, KeyError) as exc:
                out = error_line(item, exc)
        stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    stdout.flush()
    return 0
