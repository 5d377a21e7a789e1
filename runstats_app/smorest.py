"""Project base classes for flask-smorest: strict argument parsing, one error envelope."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import flask_smorest
import marshmallow as ma
from flask import current_app
from flask_smorest.utils import resolve_schema_instance
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.exceptions import HTTPException

from . import strict_json
from .auth import Role, require_reader_if_reads_need_tokens, require_role
from .errors import BadRequest, error_response
from .openapi import ERROR_RESPONSES, REQUEST_HEAD_ERRORS, ErrorSchema


class StrictParser(FlaskParser):
    """400 for invalid arguments (not 422) and unknown query parameters rejected.

    smorest's default silently drops unknown query parameters; a misspelled
    filter would then widen the result instead of failing. Bodies are parsed as
    strict JSON (runstats_app.strict_json), and a body in another media type is
    a 400 saying so rather than being read as no body at all.
    """

    DEFAULT_VALIDATION_STATUS = 400
    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {  # noqa: RUF012
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": ma.RAISE,
        "querystring": ma.RAISE,
        "json": ma.RAISE,
    }

    def load_querystring(self, req: Any, schema: ma.Schema) -> Any:
        """Also reject a repeated single-valued parameter: webargs would keep the first
        value and silently drop the others (`?filter_query=A&filter_query=B`)."""
        proxy = super().load_querystring(req, schema)
        names = {field.data_key or name for name, field in schema.fields.items()}
        single = names - set(proxy.multiple_keys)
        repeated = {
            key: ["Given more than once; this parameter takes a single value."]
            for key, values in req.args.lists()
            if key in single and len(values) > 1
        }
        if repeated:
            raise ma.ValidationError(repeated)
        return proxy

    def _raw_load_json(self, req: Any) -> Any:
        body = req.get_data(cache=True)
        if not body:
            return core.missing
        if not is_json_request(req):
            sent = f"Content-Type {req.mimetype}" if req.mimetype else "no Content-Type"
            raise BadRequest(
                f"The request body must be application/json (the request has {sent}).",
                {"headers": {"Content-Type": ["Must be application/json."]}},
            )
        try:
            return strict_json.loads(body)
        except strict_json.StrictJSONError as exc:
            abort(400, messages={"json": [f"Invalid JSON body: {exc}."]})


def summarize_errors(errors: Any, path: str = "") -> str | None:
    """The first validation message with where it applies, for `message`."""
    if isinstance(errors, dict):
        for key, sub in errors.items():
            if key in ("query", "json", "path", "headers") or key in ("_schema", "$"):
                child = path
            elif isinstance(key, int):
                child = f"{path}[{key}]"
            else:
                child = (
                    f"{path}.{key}"
                    if path and not str(key).startswith("[")
                    else (f"{path}{key}" if path else str(key))
                )
            found = summarize_errors(sub, child)
            if found:
                return found
        return None
    if isinstance(errors, list) and errors:
        first = errors[0]
        if isinstance(first, str):
            return f"{path}: {first}" if path else first
        return summarize_errors(first, path)
    return None


class Api(flask_smorest.Api):
    """Errors use the project's envelope schema; each operation lists its own error
    responses (Blueprint.errors) instead of one catch-all `default`."""

    ERROR_SCHEMA = ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None

    def handle_http_exception(self, error: HTTPException) -> Any:
        payload, code, headers = super().handle_http_exception(error)
        if "message" not in payload:
            summary = summarize_errors(payload.get("errors"))
            payload["message"] = summary or error.description or error.name
        elif code == 400 and payload.get("errors"):
            summary = summarize_errors(payload["errors"])
            if summary:
                payload["message"] = f"Invalid request: {summary}"
        if code == 401:
            headers = {**headers, "WWW-Authenticate": 'Bearer realm="runstats"'}
        if code == 413:
            limit = current_app.config["MAX_CONTENT_LENGTH"]
            payload["message"] = f"The request body is larger than the limit of {limit} bytes."
        return error_response(code, payload["message"], payload.get("errors"), headers)


BEARER_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def _add_to_apidoc(func: Any, codes: tuple[int, ...], security: bool = False) -> None:
    """Record error answers (each with the envelope) and, optionally, the bearer requirement."""
    apidoc = copy.deepcopy(getattr(func, "_apidoc", {}))
    responses = apidoc.setdefault("response", {}).setdefault("responses", {})
    for code in codes:
        names = responses.setdefault(code, [])
        if ERROR_RESPONSES[code].name not in names:
            names.append(ERROR_RESPONSES[code].name)
    if security:
        apidoc.setdefault("manual_doc", {})["security"] = BEARER_SECURITY
    func._apidoc = apidoc


class Blueprint(flask_smorest.Blueprint):
    """An API resource: strict arguments, the deployment's read policy, documented errors."""

    ARGUMENTS_PARSER = StrictParser()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.before_request(require_reader_if_reads_need_tokens)

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        """flask-smorest's, with the schema instantiated once instead of on every request."""
        return super().arguments(resolve_schema_instance(schema), *args, **kwargs)

    def _prepare_response_doc(self, doc: Any, doc_info: Any, **kwargs: Any) -> Any:
        """Every operation also documents the answers to an over-long request head."""
        responses = doc_info.setdefault("response", {}).setdefault("responses", {})
        for code in REQUEST_HEAD_ERRORS:
            responses.setdefault(code, []).append(ERROR_RESPONSES[code].name)
        return super()._prepare_response_doc(doc, doc_info, **kwargs)

    def errors(self, *codes: int) -> Callable[[Any], Any]:
        """Document the error answers an operation can give, each with the envelope.

        What `alt_response(code, response=...)` records, without its wrapper: a
        wrapper per code costs every request a call through `ensure_sync`, for
        documentation alone.
        """

        def decorator(func: Any) -> Any:
            _add_to_apidoc(func, codes)
            return func

        return decorator

    @staticmethod
    def requires(role: Role) -> Callable[[Any], Any]:
        """Enforce a role, and document it: the bearer requirement and the 401 and 403 answers.

        The view receives the caller as the `identity` keyword argument.
        """

        def decorator(func: Any) -> Any:
            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return func(*args, identity=require_role(role), **kwargs)

            _add_to_apidoc(wrapper, (401, 403), security=True)
            return wrapper

        return decorator
