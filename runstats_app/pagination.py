"""Keyset page tokens: signed, opaque, bound to the filter they were issued for."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from itsdangerous import BadSignature, URLSafeSerializer

from .errors import BadRequest
from .timefmt import format_timestamp, parse_timestamp

_SALT = "runstats.page-token.v1"


@dataclass(frozen=True)
class Cursor:
    """The sort key of the last row of a page: (created_at, id)."""

    created_at: datetime
    run_id: str


def filter_binding(filter_query: str | None, statuses: Sequence[str] | None) -> str:
    """A digest of the filter parameters exactly as sent ("me" unresolved)."""
    material = json.dumps([filter_query, list(statuses or [])], separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class PageTokens:
    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt=_SALT)

    def encode(self, cursor: Cursor, binding: str) -> str:
        return self._serializer.dumps(
            {"c": format_timestamp(cursor.created_at), "i": cursor.run_id, "b": binding}
        )

    def decode(self, token: str, binding: str) -> Cursor:
        try:
            payload = self._serializer.loads(token)
            if payload["b"] != binding:
                raise BadRequest(
                    "page_token was issued for other filter_query/status parameters; "
                    "send the same ones, or start again without page_token.",
                    {"query": {"page_token": ["Does not match the filter parameters."]}},
                )
            return Cursor(parse_timestamp(payload["c"]), str(payload["i"]))
        except BadRequest:
            raise
        except (BadSignature, KeyError, TypeError, ValueError):
            raise BadRequest(
                "page_token is malformed or was tampered with.",
                {"query": {"page_token": ["Not a valid page token."]}},
            ) from None
