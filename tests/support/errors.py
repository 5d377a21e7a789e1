"""The one error envelope {code, status, message, errors?}, and where an error points."""

from __future__ import annotations

from typing import Any

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.test import TestResponse

ERROR_FIELDS = {"code", "status", "message", "errors"}
LEAKS = ("Traceback", 'File "', "sqlalchemy", "psycopg", "sqlite3", "SELECT ", " FROM ")


def assert_error_envelope(response: TestResponse, code: int) -> dict[str, Any]:
    """The answer is `code` in the one error shape; its body."""
    assert response.status_code == code, response.get_data(as_text=True)
    return assert_error_body(response.json, code)


def assert_error_body(body: Any, code: int) -> dict[str, Any]:
    """An error body in the one shape, for `code` (from whichever client got it)."""
    assert isinstance(body, dict)
    assert set(body) <= ERROR_FIELDS
    assert {"code", "status", "message"} <= set(body)
    assert body["code"] == code
    assert body["status"] == HTTP_STATUS_CODES[code]
    assert isinstance(body["message"], str) and body["message"].strip()
    if "errors" in body:
        assert isinstance(body["errors"], dict)
    return body


def assert_bad_request(response: TestResponse) -> dict[str, Any]:
    """A 400 in the one error envelope, with nothing internal in it."""
    body = assert_error_envelope(response, 400)
    text = response.get_data(as_text=True)
    for leak in LEAKS:
        assert leak not in text
    return body


def error_keys(body: dict[str, Any]) -> set[str]:
    """Every key anywhere under `errors` (locations, parameters, JSON paths)."""
    keys: set[str] = set()
    stack: list[Any] = [body.get("errors", {})]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            keys.update(str(key) for key in value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return keys


def assert_names_path(body: dict[str, Any], path: str) -> None:
    """`errors` has `path` itself or a path below it."""
    keys = error_keys(body)
    assert any(key == path or key.startswith((f"{path}.", f"{path}[")) for key in keys), body
