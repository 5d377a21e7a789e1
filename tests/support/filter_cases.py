"""Bad filter_query documents, each with where its error must point.

One list for both levels: tests/test_filter_schema.py parses them directly,
tests/api/test_bad_inputs.py sends them to the list endpoint and expects a
400 naming the same JSON path.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .contract import CREATED_AT, CREATED_BY, NAME, STATUS, STATUS_UPDATED_AT

LEAF: dict[str, Any] = {"key_exists": {"key": "team"}}


def dumps(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def _time_range(key: str, **bounds: Any) -> dict[str, Any]:
    return {"time_range": {"key": key, **bounds}}


MALFORMED_FILTERS = [
    pytest.param('{"and": [', id="truncated-json"),
    pytest.param("{'and': []}", id="single-quoted-json"),
    pytest.param("", id="empty-string"),
    pytest.param("[]", id="root-list"),
    pytest.param('"and"', id="root-string"),
    pytest.param("null", id="root-null"),
    pytest.param("{}", id="root-with-neither-and-nor-or"),
    pytest.param(dumps(LEAF), id="root-is-a-leaf"),
    pytest.param(dumps({"not": LEAF}), id="root-is-not"),
    pytest.param(dumps({"and": [LEAF], "or": [LEAF]}), id="root-with-both-and-and-or"),
    pytest.param(
        '{"and": [{"key_exists": {"key": "a"}}], "and": [{"key_exists": {"key": "b"}}]}',
        id="duplicate-root-key",
    ),
    pytest.param(
        '{"and": [{"value_equals": {"key": "a", "value": "x", "value": "y"}}]}',
        id="duplicate-key-in-predicate",
    ),
    pytest.param('{"and": [{"value_equals": {"key": "a", "value": NaN}}]}', id="nan"),
    pytest.param('{"and": [{"value_equals": {"key": "a", "value": -Infinity}}]}', id="infinity"),
    pytest.param("[" * 4000 + "]" * 4000, id="deep-raw-json-within-size-limit"),
]

GRAMMAR_ERRORS = [
    pytest.param({"and": []}, "and", id="empty-and"),
    pytest.param({"or": []}, "or", id="empty-or"),
    pytest.param({"and": [LEAF, {"or": []}]}, "and[1].or", id="nested-empty-or"),
    pytest.param({"and": "x"}, "and", id="and-not-a-list"),
    pytest.param({"and": [LEAF, {}]}, "and[1]", id="predicate-with-zero-keys"),
    pytest.param(
        {"and": [LEAF, {**LEAF, "value_equals": {"key": "a", "value": "b"}}]},
        "and[1]",
        id="predicate-with-two-keys",
    ),
    pytest.param({"and": ["key_exists"]}, "and[0]", id="predicate-not-an-object"),
    pytest.param(
        {"and": [{"value_like": {"key": "a", "value": "b"}}]}, "and[0]", id="unknown-predicate"
    ),
    pytest.param(
        {"and": [{"key_exists": {"key": "a", "value": "b"}}]},
        "and[0].key_exists.value",
        id="unknown-field-in-predicate",
    ),
    pytest.param(
        {"and": [{"key_exists": "team"}]}, "and[0].key_exists", id="predicate-body-not-an-object"
    ),
    pytest.param({"and": [{"not": [LEAF]}]}, "and[0].not", id="not-body-not-a-predicate"),
    pytest.param(
        {"and": [{"not": {"value_in": {"key": "a", "values": []}}}]},
        "and[0].not.value_in.values",
        id="error-inside-not",
    ),
    pytest.param({"and": [{"key_exists": {}}]}, "and[0].key_exists.key", id="missing-key"),
    pytest.param({"and": [{"key_exists": {"key": ""}}]}, "and[0].key_exists.key", id="empty-key"),
    pytest.param(
        {"and": [{"value_equals": {"key": 12, "value": "x"}}]},
        "and[0].value_equals.key",
        id="key-is-a-number",
    ),
    pytest.param(
        {"and": [{"value_equals": {"key": "a"}}]}, "and[0].value_equals.value", id="missing-value"
    ),
    pytest.param(
        {"and": [{"value_equals": {"key": "a", "value": 12}}]},
        "and[0].value_equals.value",
        id="value-is-a-number",
    ),
    pytest.param(
        {"and": [{"value_equals": {"key": "a", "value": None}}]},
        "and[0].value_equals.value",
        id="value-null",
    ),
    pytest.param(
        {"and": [{"value_in": {"key": "a", "values": "x"}}]},
        "and[0].value_in.values",
        id="values-not-a-list",
    ),
    pytest.param(
        {"and": [{"value_in": {"key": "a", "values": ["x", 3]}}]},
        "and[0].value_in.values[1]",
        id="value-in-item-not-a-string",
    ),
    pytest.param(
        {"and": [{"value_in": {"key": "a", "values": []}}]},
        "and[0].value_in.values",
        id="value-in-empty-list",
    ),
    pytest.param(
        {"and": [{"value_contains": {"key": "a", "value_substring": ""}}]},
        "and[0].value_contains.value_substring",
        id="empty-substring",
    ),
    pytest.param(
        {"and": [LEAF, _time_range(CREATED_AT)]}, "and[1].time_range", id="time-range-no-bounds"
    ),
    pytest.param(
        {
            "and": [
                LEAF,
                _time_range(
                    CREATED_AT, start_time="2026-03-20T00:00:00Z", end_time="2026-03-19T00:00:00Z"
                ),
            ]
        },
        "and[1].time_range",
        id="time-range-start-after-end",
    ),
    pytest.param(
        {"and": [LEAF, _time_range(CREATED_AT, start_time="2026-03-19T12:00:00")]},
        "and[1].time_range.start_time",
        id="time-range-naive-timestamp",
    ),
    pytest.param(
        {"and": [LEAF, _time_range(STATUS_UPDATED_AT, end_time="March 19, 2026")]},
        "and[1].time_range.end_time",
        id="time-range-not-rfc3339",
    ),
    pytest.param(
        {"and": [_time_range(CREATED_AT, end_time=1773921600)]},
        "and[0].time_range.end_time",
        id="time-range-numeric-end-time",
    ),
    pytest.param(
        {"and": [_time_range(CREATED_AT, start_time="2026-02-30T00:00:00Z")]},
        "and[0].time_range.start_time",
        id="time-range-impossible-date",
    ),
    pytest.param(
        {"and": [_time_range("team", start_time="2026-03-19T12:00:00Z")]},
        "and[0].time_range",
        id="time-range-on-annotation-key",
    ),
    pytest.param(
        {"and": [_time_range(NAME, start_time="2026-03-19T12:00:00Z")]},
        "and[0].time_range",
        id="time-range-on-name",
    ),
    pytest.param(
        {"and": [{"value_contains": {"key": CREATED_BY, "value_substring": "al"}}]},
        "and[0].value_contains",
        id="value-contains-on-created-by",
    ),
    pytest.param(
        {"and": [{"key_exists": {"key": STATUS}}]}, "and[0].key_exists", id="key-exists-on-status"
    ),
    pytest.param(
        {"and": [{"value_equals": {"key": CREATED_AT, "value": "x"}}]},
        "and[0].value_equals",
        id="value-equals-on-created-at",
    ),
    pytest.param(
        {"and": [{"key_exists": {"key": "system/pipeline_run.owner"}}]},
        "and[0].key_exists",
        id="unknown-system-key",
    ),
    pytest.param(
        {"and": [{"value_equals": {"key": STATUS, "value": "DONE"}}]},
        "and[0].value_equals.value",
        id="status-value-not-a-status",
    ),
    pytest.param(
        {"and": [{"value_equals": {"key": STATUS, "value": "running"}}]},
        "and[0].value_equals.value",
        id="status-value-wrong-case",
    ),
    pytest.param(
        {"and": [{"value_in": {"key": STATUS, "values": ["RUNNING", "DONE"]}}]},
        "and[0].value_in.values[1]",
        id="status-values-item-not-a-status",
    ),
]
