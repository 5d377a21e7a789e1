"""Bearer tokens: creation, revocation, and the identity of the current request."""

from __future__ import annotations

import functools
import hashlib
import inspect
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from flask import Flask, current_app, g, request
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from .errors import Forbidden, Unauthorized
from .models import ApiToken

TOKEN_PREFIX = "rst_"  # noqa: S105 - a public prefix, not a secret


class Role(IntEnum):
    reader = 1
    writer = 2
    admin = 3


ROLE_NAMES = tuple(role.name for role in Role)


@dataclass(frozen=True)
class Identity:
    user: str
    role: Role

    def has(self, role: Role) -> bool:
        return self.role >= role


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(session: Session, user: str, role: Role) -> str:
    """A new random token (256 bits); only its digest is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            token_hash=hash_token(token),
            user_name=user,
            role=role.name,
            created_at=datetime.now(UTC),
        )
    )
    return token


def revoke_token(session: Session, token: str) -> bool:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = datetime.now(UTC)
    return True


_IDENTITY_BY_DIGEST = select(ApiToken.user_name, ApiToken.role).where(
    ApiToken.token_hash == bindparam("digest"), ApiToken.revoked_at.is_(None)
)


def lookup_identity(connection: Connection, token: str) -> Identity | None:
    """The identity of a live token; a Core statement, as it runs on every authenticated call."""
    row = connection.execute(_IDENTITY_BY_DIGEST, {"digest": hash_token(token)}).first()
    if row is None:
        return None
    return Identity(user=row.user_name, role=Role[row.role])


def bearer_token() -> str | None:
    """The token of the request; raises 401 for a malformed Authorization header."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    token = parse_bearer(header)
    if token is None:
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
    return token


def parse_bearer(header: str) -> str | None:
    """The token of an Authorization header's value; None unless it is 'Bearer <token>'."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


ReadPrimary = Callable[[Callable[[Connection], "Identity | None"]], "Identity | None"]
"""Runs a read on the primary (`Database.read_primary`): revocations must show at once."""


def authenticate(read_primary: ReadPrimary) -> Identity | None:
    """Resolve and remember the caller; a presented but invalid token is a 401.

    Anonymous reads (the homepage's stats) cost no database work here, and a token is
    looked up outside the request's transaction where the server allows (no BEGIN and
    ROLLBACK around it for a read-only request).
    """
    token = bearer_token()
    if token is None:
        identity = None
    else:
        identity = read_primary(lambda connection: lookup_identity(connection, token))
        if identity is None:
            raise Unauthorized("The bearer token is not valid.")
    g.identity = identity
    return identity


PUBLIC_ATTRIBUTE = "runstats_public"
READ_METHODS = frozenset({"GET", "HEAD"})


def public(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view that answers without looking at any token (health, metrics, docs).

    A bound method (a blueprint's static files, flask-smorest's docs page)
    takes no attribute, so it is marked through a wrapper.
    """
    if inspect.ismethod(view):
        method = view

        @functools.wraps(method)
        def view(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

    setattr(view, PUBLIC_ATTRIBUTE, True)
    return view


def init_app(app: Flask, read_primary: ReadPrimary) -> None:
    """Identify the caller of every request, except on public views."""

    @app.before_request
    def _identify() -> None:
        view = app.view_functions.get(request.endpoint or "")
        if not getattr(view, PUBLIC_ATTRIBUTE, False):
            authenticate(read_primary)


def require_reader_if_reads_need_tokens() -> None:
    """The deployment's read policy (RUNSTATS_REQUIRE_AUTH_FOR_READS) for an API resource."""
    if (
        request.method in READ_METHODS
        and current_app.config["RUNSTATS"].require_auth_for_reads
        and current_identity() is None
    ):
        require_role(Role.reader)


def current_identity() -> Identity | None:
    identity: Identity | None = g.get("identity")
    return identity


def require_role(role: Role) -> Identity:
    identity = current_identity()
    if identity is None:
        raise Unauthorized(f"This operation needs a bearer token with the {role.name} role.")
    if not identity.has(role):
        raise Forbidden(
            f"This operation needs the {role.name} role; the token has {identity.role.name}."
        )
    return identity


def require_owner_or_admin(identity: Identity, owner: str | None) -> None:
    if identity.has(Role.admin) or (owner is not None and owner == identity.user):
        return
    raise Forbidden("Only the run's creator or an admin may change this run.")
