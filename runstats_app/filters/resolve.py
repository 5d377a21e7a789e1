"""Turn the request's filter parameters into the tree the WHERE builder takes."""

from __future__ import annotations

from ..errors import BadRequest
from .nodes import FilterNode, mentions_me, resolve_me
from .schema import ParsedFilter


def resolve_filter(
    parsed: ParsedFilter | None, authenticated_user: str | None, current_user: str | None
) -> FilterNode | None:
    """Replace "me": the authenticated user first, else the `current_user` parameter."""
    if parsed is None:
        return None
    if not mentions_me(parsed.tree):
        return parsed.tree
    user = authenticated_user or current_user
    if user is None:
        raise BadRequest(
            'filter_query uses "me" but the request has no bearer token and no '
            "current_user parameter.",
            {"query": {"current_user": ['Needed to resolve "me".']}},
        )
    return resolve_me(parsed.tree, user)
