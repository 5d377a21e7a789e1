"""Unit tests of filter_query parsing: error paths, and every limit at and just past it.

Depth counts predicates from the root down: a predicate directly in the root's
``and``/``or`` list is at depth 1 (the root object is not itself a predicate).
The predicate count likewise includes nested ``and``/``or``/``not`` but not the root.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from runstats_app.filters import nodes
from runstats_app.filters.schema import FilterQueryError, parse_filter_query

from .support.contract import CREATED_AT, NAME, STATUS, STATUS_UPDATED_AT
from .support.filter_cases import GRAMMAR_ERRORS, LEAF, MALFORMED_FILTERS, dumps


def root(*predicates: Any) -> str:
    return dumps({"and": list(predicates)})


def parse_error(raw: str) -> dict[str, list[str]]:
    with pytest.raises(FilterQueryError) as caught:
        parse_filter_query(raw)
    errors = caught.value.errors
    assert errors, "a FilterQueryError must carry at least one message"
    assert all(
        messages and all(isinstance(m, str) and m for m in messages)
        for messages in errors.values()
    )
    return errors


def all_messages(errors: dict[str, list[str]]) -> str:
    return " ".join(message for messages in errors.values() for message in messages)


def not_chain(depth: int) -> str:
    """A leaf at `depth`: root -> not -> ... -> not -> leaf (depth - 1 nots)."""
    predicate: Any = LEAF
    for _ in range(depth - 1):
        predicate = {"not": predicate}
    return root(predicate)


def and_chain(depth: int) -> str:
    """A leaf at `depth` through nested `and` lists."""
    predicate: Any = LEAF
    for _ in range(depth - 1):
        predicate = {"and": [predicate]}
    return root(predicate)


def padded_to(size: int, filler: str = "x") -> str:
    """A valid filter whose UTF-8 encoding is exactly `size` bytes."""
    base = root({"value_equals": {"key": "team", "value": ""}})
    missing = size - len(base.encode("utf-8"))
    width = len(filler.encode("utf-8"))
    assert missing >= 0 and missing % width == 0
    raw = root({"value_equals": {"key": "team", "value": filler * (missing // width)}})
    assert len(raw.encode("utf-8")) == size
    return raw


# --- what a valid filter turns into ---------------------------------------------------


def test_valid_filter_becomes_a_tree_of_nodes() -> None:
    tree = parse_filter_query(
        root(
            {"value_equals": {"key": "team", "value": "ml"}},
            {
                "not": {
                    "or": [
                        {"key_exists": {"key": NAME}},
                        {"value_in": {"key": STATUS, "values": ["RUNNING"]}},
                    ]
                }
            },
        )
    )
    assert tree == nodes.And(
        (
            nodes.ValueEquals("team", "ml"),
            nodes.Not(nodes.Or((nodes.KeyExists(NAME), nodes.ValueIn(STATUS, ("RUNNING",))))),
        )
    )


def test_or_root_is_accepted() -> None:
    assert parse_filter_query(dumps({"or": [LEAF]})) == nodes.Or((nodes.KeyExists("team"),))


def test_empty_string_values_are_allowed() -> None:
    tree = parse_filter_query(
        root(
            {"value_equals": {"key": "team", "value": ""}},
            {"value_in": {"key": "team", "values": [""]}},
        )
    )
    assert tree == nodes.And((nodes.ValueEquals("team", ""), nodes.ValueIn("team", ("",))))


def test_time_range_bounds_are_converted_to_utc() -> None:
    tree = parse_filter_query(
        root(
            {
                "time_range": {
                    "key": CREATED_AT,
                    "start_time": "2026-03-19T14:00:00+02:00",
                    "end_time": "2026-03-19T12:30:00.5Z",
                }
            }
        )
    )
    assert tree == nodes.And(
        (
            nodes.TimeRange(
                CREATED_AT,
                datetime(2026, 3, 19, 12, 0, tzinfo=UTC),
                datetime(2026, 3, 19, 12, 30, 0, 500000, tzinfo=UTC),
            ),
        )
    )


def test_time_range_with_start_equal_to_end_is_accepted() -> None:
    moment = "2026-03-19T12:00:00Z"
    tree = parse_filter_query(
        root({"time_range": {"key": STATUS_UPDATED_AT, "start_time": moment, "end_time": moment}})
    )
    assert isinstance(tree, nodes.And)


def test_time_range_with_one_bound_is_accepted() -> None:
    tree = parse_filter_query(
        root({"time_range": {"key": CREATED_AT, "end_time": "2026-03-19T12:00:00Z"}})
    )
    assert tree == nodes.And(
        (nodes.TimeRange(CREATED_AT, None, datetime(2026, 3, 19, 12, tzinfo=UTC)),)
    )


# --- error paths ------------------------------------------------------------------------


@pytest.mark.parametrize(("document", "path"), GRAMMAR_ERRORS)
def test_grammar_error_names_its_json_path(document: Any, path: str) -> None:
    errors = parse_error(dumps(document))
    assert any(key == path or key.startswith((f"{path}.", f"{path}[")) for key in errors), errors


@pytest.mark.parametrize("raw", MALFORMED_FILTERS)
def test_malformed_document_is_rejected(raw: str) -> None:
    parse_error(raw)


def test_unknown_system_key_message_names_the_key() -> None:
    errors = parse_error(root({"key_exists": {"key": "system/pipeline_run.owner"}}))
    assert "system/pipeline_run.owner" in all_messages(errors)


# --- limits -----------------------------------------------------------------------------


@pytest.mark.parametrize("chain", [not_chain, and_chain], ids=["not", "and"])
def test_depth_16_is_accepted(chain: Any) -> None:
    assert isinstance(parse_filter_query(chain(16)), nodes.And)


@pytest.mark.parametrize("chain", [not_chain, and_chain], ids=["not", "and"])
def test_depth_17_is_rejected_naming_the_depth_limit(chain: Any) -> None:
    message = all_messages(parse_error(chain(17)))
    assert "depth" in message.lower()
    assert "16" in message


def test_100_predicates_are_accepted() -> None:
    tree = parse_filter_query(root(*[LEAF] * 100))
    assert isinstance(tree, nodes.And) and len(tree.items) == 100


def test_101_predicates_are_rejected_naming_the_predicate_limit() -> None:
    message = all_messages(parse_error(root(*[LEAF] * 101)))
    assert "predicate" in message.lower()
    assert "100" in message


def test_nested_combinators_count_as_predicates() -> None:
    parse_filter_query(root({"or": [LEAF] * 99}))  # 1 + 99 = 100
    message = all_messages(parse_error(root({"or": [LEAF] * 100})))  # 1 + 100 = 101
    assert "predicate" in message.lower()


def test_not_counts_as_a_predicate() -> None:
    parse_filter_query(root(*[LEAF] * 98, {"not": LEAF}))  # 98 + 2 = 100
    parse_error(root(*[LEAF] * 99, {"not": LEAF}))  # 99 + 2 = 101


def test_value_in_with_100_items_is_accepted() -> None:
    values = [f"v{i}" for i in range(100)]
    tree = parse_filter_query(root({"value_in": {"key": "team", "values": values}}))
    assert tree == nodes.And((nodes.ValueIn("team", tuple(values)),))


def test_value_in_with_101_items_is_rejected_naming_the_limit() -> None:
    values = [f"v{i}" for i in range(101)]
    errors = parse_error(root({"value_in": {"key": "team", "values": values}}))
    assert "and[0].value_in.values" in errors
    assert "100" in all_messages(errors)


def test_filter_of_exactly_8192_bytes_is_accepted() -> None:
    assert isinstance(parse_filter_query(padded_to(8192)), nodes.And)


def test_filter_of_8193_bytes_is_rejected_naming_the_size_limit() -> None:
    message = all_messages(parse_error(padded_to(8193)))
    assert "8192" in message


def test_size_limit_counts_utf8_bytes_not_characters() -> None:
    raw = padded_to(8194, filler="é")  # two bytes per é: well under 8192 characters
    assert len(raw) < 8192
    assert "8192" in all_messages(parse_error(raw))


def test_multibyte_filter_of_exactly_8192_bytes_is_accepted() -> None:
    assert isinstance(parse_filter_query(padded_to(8192, filler="é")), nodes.And)
