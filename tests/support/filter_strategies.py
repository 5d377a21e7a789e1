"""Hypothesis strategies for filter_query trees: and/or/not over the leaves a test chooses."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

Filter = dict[str, Any]


def nested_predicates(
    leaves: st.SearchStrategy[Filter], depth: int, *, leaf_weight: int = 1
) -> st.SearchStrategy[Filter]:
    """A predicate with at most `depth` levels of and/or/not above `leaves`; at each level
    a leaf is `leaf_weight` times as likely as each combinator."""
    if depth == 0:
        return leaves
    inner = nested_predicates(leaves, depth - 1, leaf_weight=leaf_weight)
    return st.one_of(
        *[leaves] * leaf_weight,
        st.builds(lambda items: {"and": items}, st.lists(inner, min_size=1, max_size=2)),
        st.builds(lambda items: {"or": items}, st.lists(inner, min_size=1, max_size=2)),
        st.builds(lambda item: {"not": item}, inner),
    )


def filter_roots(
    predicates: st.SearchStrategy[Filter], max_size: int
) -> st.SearchStrategy[Filter]:
    """A whole filter_query: an `and` or an `or` of 1 to `max_size` predicates."""
    return st.builds(
        lambda kind, items: {kind: items},
        st.sampled_from(("and", "or")),
        st.lists(predicates, min_size=1, max_size=max_size),
    )
