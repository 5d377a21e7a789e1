"""Strict JSON for everything a client sends (request bodies and filter_query).

Python's json module accepts what RFC 8259 does not, or what a service should
not: duplicate object keys (the last silently wins), NaN and Infinity, floats
that overflow to infinity, integers of any size (and above 4300 digits it
raises a ValueError that is not a JSONDecodeError). Here each is an error
whose message says what is wrong.
"""

from __future__ import annotations

import json
import math
from typing import Any

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
_MAX_INT_CHARS = len(str(INT_MIN))
TOO_DEEP = "nested too deeply"


class StrictJSONError(ValueError):
    """The text is not JSON this service accepts; the message says why."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise StrictJSONError(f"duplicate key {key!r} in an object")
        result[key] = value
    return result


def _constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not valid JSON")


def _integer(text: str) -> int:
    if len(text) <= _MAX_INT_CHARS:
        value = int(text)
        if INT_MIN <= value <= INT_MAX:
            return value
    raise StrictJSONError("an integer is out of range (limit: signed 64-bit)")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJSONError("a number is too large to represent")
    return value


def loads(document: str | bytes) -> Any:
    """Parse `document` (bytes must be UTF-8) or raise StrictJSONError."""
    if isinstance(document, bytes):
        try:
            document = document.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StrictJSONError(f"not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(
            document,
            object_pairs_hook=_object,
            parse_constant=_constant,
            parse_int=_integer,
            parse_float=_float,
        )
    except StrictJSONError:
        raise
    except RecursionError:
        raise StrictJSONError(TOO_DEEP) from None
    except ValueError as exc:
        raise StrictJSONError(str(exc)) from None
