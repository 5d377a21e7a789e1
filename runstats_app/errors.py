"""Domain errors and the handlers that turn every failure into the one envelope."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.sansio.response import Response

log = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 5


class DomainError(Exception):
    """A failure the client can act on; carries its HTTP status."""

    status_code = 400

    def __init__(self, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class BadRequest(DomainError):
    status_code = 400


class Unauthorized(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class ServiceUnavailable(DomainError):
    status_code = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def envelope(code: int, message: str, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one error body: {code, status, message, errors?}."""
    payload: dict[str, Any] = {
        "code": code,
        "status": HTTP_STATUS_CODES.get(code, "Error"),
        "message": message,
    }
    if errors:
        payload["errors"] = errors
    return payload


def error_response(
    code: int,
    message: str,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    response = current_app.json.response(envelope(code, message, errors))
    response.status_code = code
    if headers:
        response.headers.update(headers)
    return response


def _is_unreachable(error: DBAPIError) -> bool:
    return isinstance(error, OperationalError) or bool(error.connection_invalidated)


def init_app(app: Flask) -> None:
    """Every failure answered in the one envelope; nothing internal reaches a client."""

    @app.errorhandler(DomainError)
    def _domain(error: DomainError) -> Response:
        headers: dict[str, str] = {}
        if isinstance(error, ServiceUnavailable):
            headers["Retry-After"] = str(error.retry_after)
        if isinstance(error, Unauthorized):
            headers["WWW-Authenticate"] = 'Bearer realm="runstats"'
        return error_response(error.status_code, error.message, error.errors, headers)

    @app.errorhandler(PoolTimeoutError)
    def _pool_timeout(error: PoolTimeoutError) -> Response:
        log.warning("database pool exhausted: %s", error)
        return error_response(
            503,
            "The database is busy; retry shortly.",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )

    @app.errorhandler(DBAPIError)
    def _database(error: DBAPIError) -> Response:
        if _is_unreachable(error):
            log.warning("database unavailable: %s", type(error.orig).__name__)
            return error_response(
                503,
                "The database is unavailable; retry shortly.",
                headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
            )
        log.exception("database error")
        return error_response(500, "Internal server error.")

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Any:
        if isinstance(error, HTTPException):
            return error
        log.exception("unhandled error")
        return error_response(500, "Internal server error.")
