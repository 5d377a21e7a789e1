"""Which filters the maintained counts answer (runstats_app.stats.counts.planner)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from runstats_app.filters import nodes
from runstats_app.filters.nodes import resolve_me
from runstats_app.filters.schema import parse_filter_query
from runstats_app.stats.counts.planner import (
    AnnotationCondition,
    TextCondition,
    plan,
    without_created_at,
)

from ...support.contract import CREATED_AT, CREATED_BY, NAME, STATUS, STATUS_UPDATED_AT


def planned(*predicates, statuses=None, untracked=("git_sha",)):
    tree = parse_filter_query(json.dumps({"and": list(predicates)})) if predicates else None
    if tree is not None:
        tree = resolve_me(tree, "alice")
    return plan(tree, statuses, frozenset(untracked))


def test_no_filter_is_answered():
    query = planned()
    assert query is not None and not query.by_creator and query.annotation is None


def test_me_and_a_name_substring_and_a_range_are_answered_together():
    query = planned(
        {"value_equals": {"key": CREATED_BY, "value": "me"}},
        {"value_contains": {"key": NAME, "value_substring": "train"}},
        {"time_range": {"key": CREATED_AT, "start_time": "2026-03-01T00:30:00Z"}},
    )
    assert query is not None
    assert query.created_by == TextCondition((frozenset({"alice"}),))
    assert query.name == TextCondition((), ("train",))
    assert query.start == datetime(2026, 3, 1, 0, 30, tzinfo=UTC) and query.end is None


def test_two_ranges_intersect():
    query = planned(
        {"time_range": {"key": CREATED_AT, "start_time": "2026-03-01T00:00:00Z"}},
        {
            "time_range": {
                "key": CREATED_AT,
                "start_time": "2026-02-01T00:00:00Z",
                "end_time": "2026-04-01T00:00:00Z",
            }
        },
    )
    assert query is not None
    assert (query.start, query.end) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
    )


def test_the_status_parameter_and_predicate_intersect():
    query = planned(
        {"value_in": {"key": STATUS, "values": ["FAILED", "RUNNING"]}},
        statuses=["FAILED", "QUEUED"],
    )
    assert query is not None and query.statuses == frozenset({"FAILED"})


def test_one_annotation_key_with_several_conditions_is_answered():
    query = planned(
        {"key_exists": {"key": "team"}},
        {"value_contains": {"key": "team", "value_substring": "ml"}},
    )
    assert query is not None
    assert query.annotation == AnnotationCondition("team", TextCondition((), ("ml",)))


@pytest.mark.parametrize(
    "predicates",
    [
        [{"or": [{"key_exists": {"key": "team"}}, {"key_exists": {"key": "env"}}]}],
        [{"not": {"value_equals": {"key": NAME, "value": "x"}}}],
        [{"time_range": {"key": STATUS_UPDATED_AT, "start_time": "2026-03-01T00:00:00Z"}}],
        [{"key_exists": {"key": "team"}}, {"key_exists": {"key": "env"}}],
        [{"value_equals": {"key": "git_sha", "value": "abc"}}],
    ],
    ids=["or", "not", "status_updated_at", "two-annotation-keys", "untracked-key"],
)
def test_anything_else_scans(predicates):
    assert planned(*predicates) is None


def test_a_single_operand_or_is_its_operand():
    query = planned({"or": [{"value_equals": {"key": NAME, "value": "etl"}}]})
    assert query is not None and query.name == TextCondition((frozenset({"etl"}),))


def test_an_edge_filter_keeps_every_condition_but_the_created_at_ranges():
    me = nodes.ValueEquals(nodes.CREATED_BY, "alice")
    since = nodes.TimeRange(nodes.CREATED_AT, datetime(2026, 3, 1, tzinfo=UTC), None)
    updated = nodes.TimeRange(nodes.STATUS_UPDATED_AT, datetime(2026, 3, 1, tzinfo=UTC), None)
    assert without_created_at(nodes.And((me, since))) == nodes.And((me,))
    assert without_created_at(nodes.And((nodes.Or((since,)),))) is None
    assert without_created_at(nodes.And((updated, since))) == nodes.And((updated,))
    assert without_created_at(None) is None
