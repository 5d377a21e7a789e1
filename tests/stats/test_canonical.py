"""Property tests of runstats_app.stats.canonical: equivalent queries share one cache key.

Filters are generated as JSON-like trees whose time bounds are datetimes;
`render` writes them as filter_query text. Each test rewrites a filter in one
way the contract calls equivalent and checks that the text, parsed and "me"
resolved as the endpoint does, gives the same cache key; the negative tests
change the meaning and expect another key.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from runstats_app.filters.nodes import resolve_me
from runstats_app.filters.schema import MAX_DEPTH, MAX_PREDICATES, parse_filter_query
from runstats_app.stats import canonical
from runstats_app.stats.canonical import cache_key

from ..support.contract import (
    CREATED_AT,
    CREATED_BY,
    NAME,
    STATUS,
    STATUS_UPDATED_AT,
    STATUSES,
)
from ..support.filter_strategies import filter_roots, nested_predicates

ANNOTATION_KEYS = ("team", "env", "Team", "é/ü")
# Keys the random filters never use, for the tests that vary one leaf.
PROBE_KEY, OTHER_PROBE_KEY = "probe", "other-probe"

KEY_PATTERN = re.compile(r"^runstats:stats:v2:\{[0-9a-f]{64}\}$")
REPO_ROOT = Path(__file__).resolve().parents[2]

FAST = settings(max_examples=100, deadline=None, derandomize=True, database=None)

Filter = dict[str, Any]

# --- generating filters -------------------------------------------------------------------

# Any text the grammar accepts in keys and values alike (runstats_app/text.py: no
# control characters, no unpaired surrogates).
characters = st.characters(blacklist_categories=("Cs", "Cc"))
values = st.sampled_from(("", "a", "A", "b", "me", "é", "%_", "x y")) | st.text(
    characters, max_size=4
)
substrings = st.text(characters, min_size=1, max_size=4)
instants = st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.just(UTC),
)


def _value_for(key: str) -> st.SearchStrategy[str]:
    if key == STATUS:
        return st.sampled_from(STATUSES)
    if key == CREATED_BY:
        return st.sampled_from(("alice", "bob", "me", ""))
    return values


def _value_leaf(kind: str, keys: Sequence[str]) -> st.SearchStrategy[Filter]:
    key_strategy = st.sampled_from(keys)
    if kind == "value_equals":
        return key_strategy.flatmap(
            lambda key: _value_for(key).map(lambda v: {kind: {"key": key, "value": v}})
        )
    return key_strategy.flatmap(
        lambda key: st.lists(_value_for(key), min_size=1, max_size=4).map(
            lambda vs: {kind: {"key": key, "values": vs}}
        )
    )


def _time_range(key: str, bounds: list[datetime], which: str) -> Filter:
    bounds.sort()
    body: dict[str, Any] = {"key": key}
    if which in ("start", "both"):
        body["start_time"] = bounds[0]
    if which in ("end", "both"):
        body["end_time"] = bounds[-1]
    return {"time_range": body}


leaves = st.one_of(
    st.sampled_from((*ANNOTATION_KEYS, CREATED_BY, NAME)).map(
        lambda key: {"key_exists": {"key": key}}
    ),
    _value_leaf("value_equals", (*ANNOTATION_KEYS, CREATED_BY, NAME, STATUS)),
    _value_leaf("value_in", (*ANNOTATION_KEYS, CREATED_BY, NAME, STATUS)),
    st.builds(
        lambda key, sub: {"value_contains": {"key": key, "value_substring": sub}},
        st.sampled_from((*ANNOTATION_KEYS, NAME)),
        substrings,
    ),
    st.builds(
        _time_range,
        st.sampled_from((CREATED_AT, STATUS_UPDATED_AT)),
        st.lists(instants, min_size=2, max_size=2),
        st.sampled_from(("start", "end", "both")),
    ),
)


predicates = nested_predicates(leaves, 2)
roots = filter_roots(predicates, max_size=3)

status_lists = st.lists(st.sampled_from(STATUSES), max_size=4)

# --- rendering and keys --------------------------------------------------------------------


def render_time(moment: datetime, offset_minutes: int = 0) -> str:
    text = moment.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat()
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def _jsonable(node: Any) -> Any:
    if isinstance(node, datetime):
        return render_time(node)
    if isinstance(node, dict):
        return {name: _jsonable(body) for name, body in node.items()}
    if isinstance(node, list):
        return [_jsonable(item) for item in node]
    return node


def render(node: Filter) -> str:
    return json.dumps(_jsonable(node))


def key_of(text: str, statuses: Sequence[str] | None = None, user: str | None = None) -> str:
    """What the endpoint keys the request by: parse, resolve "me", canonicalise, hash."""
    tree = parse_filter_query(text)
    if user is not None:
        tree = resolve_me(tree, user)
    return cache_key(tree, statuses)


# --- rewrites that keep the meaning ------------------------------------------------------------
#
# Each walks the tree and, where it applies, draws how to rewrite that node.


def _rebuild(node: Any, rewrite: Any) -> Any:
    """Apply `rewrite` bottom-up to every predicate of the tree."""
    ((name, body),) = node.items()
    if name in ("and", "or"):
        node = {name: [_rebuild(item, rewrite) for item in body]}
    elif name == "not":
        node = {"not": _rebuild(body, rewrite)}
    return rewrite(node)


def permute_operands(data: st.DataObject, node: Filter) -> Filter:
    def rewrite(n: Filter) -> Filter:
        ((name, body),) = n.items()
        if name in ("and", "or"):
            return {name: data.draw(st.permutations(body))}
        return n

    return _rebuild(node, rewrite)


def duplicate_operands(data: st.DataObject, node: Filter) -> Filter:
    def rewrite(n: Filter) -> Filter:
        ((name, body),) = n.items()
        if name in ("and", "or"):
            extra = data.draw(st.lists(st.sampled_from(body), max_size=1))
            return {name: [*body, *extra]}
        return n

    return _rebuild(node, rewrite)


def nest_same_kind(data: st.DataObject, node: Filter) -> Filter:
    def rewrite(n: Filter) -> Filter:
        ((name, body),) = n.items()
        if name in ("and", "or") and len(body) >= 2:
            cut = data.draw(st.integers(1, len(body) - 1))
            return {name: [{name: body[:cut]}, *body[cut:]]}
        return n

    return _rebuild(node, rewrite)


def wrap_in_single_operand(data: st.DataObject, node: Filter) -> Filter:
    def rewrite(n: Filter) -> Filter:
        if data.draw(st.booleans()):
            return {data.draw(st.sampled_from(("and", "or"))): [n]}
        return n

    ((name, body),) = node.items()
    return {name: [_rebuild(item, rewrite) for item in body]}


def double_negate(data: st.DataObject, node: Filter) -> Filter:
    def rewrite(n: Filter) -> Filter:
        return {"not": {"not": n}} if data.draw(st.booleans()) else n

    ((name, body),) = node.items()
    return {name: [_rebuild(item, rewrite) for item in body]}


def shuffle_value_in(data: st.DataObject, node: Filter) -> Filter:
    def rewrite(n: Filter) -> Filter:
        ((name, body),) = n.items()
        if name != "value_in":
            return n
        extra = data.draw(st.lists(st.sampled_from(body["values"]), max_size=3))
        return {name: {**body, "values": data.draw(st.permutations([*body["values"], *extra]))}}

    return _rebuild(node, rewrite)


def reorder_object_keys(data: st.DataObject, node: Any) -> Any:
    """The same JSON value, with every object's members in a drawn order."""
    if isinstance(node, dict):
        order = data.draw(st.permutations(list(node)))
        return {name: reorder_object_keys(data, node[name]) for name in order}
    if isinstance(node, list):
        return [reorder_object_keys(data, item) for item in node]
    return node


offsets = st.sampled_from((0, 60, -60, 330, -180, 14 * 60 - 1, -(12 * 60)))


def render_with_offsets(data: st.DataObject, node: Any) -> Any:
    """The filter as JSON, each timestamp written in a drawn UTC offset."""
    if isinstance(node, datetime):
        return render_time(node, data.draw(offsets))
    if isinstance(node, dict):
        return {name: render_with_offsets(data, body) for name, body in node.items()}
    if isinstance(node, list):
        return [render_with_offsets(data, item) for item in node]
    return node


# --- equivalent filters share a key --------------------------------------------------------------


@FAST
@given(roots, st.data())
def test_permuted_and_or_operands_share_a_key(root, data):
    assert key_of(render(permute_operands(data, root))) == key_of(render(root))


@FAST
@given(roots, st.data())
def test_object_key_order_in_the_json_text_does_not_change_the_key(root, data):
    reordered = json.dumps(reorder_object_keys(data, _jsonable(root)))
    assert key_of(reordered) == key_of(render(root))


@FAST
@given(roots, st.data())
def test_duplicated_operands_share_a_key(root, data):
    assert key_of(render(duplicate_operands(data, root))) == key_of(render(root))


@FAST
@given(roots, st.data())
def test_nested_same_kind_and_or_share_a_key_with_the_flat_form(root, data):
    assert key_of(render(nest_same_kind(data, root))) == key_of(render(root))


@FAST
@given(roots, st.data())
def test_single_operand_and_or_share_a_key_with_their_operand(root, data):
    assert key_of(render(wrap_in_single_operand(data, root))) == key_of(render(root))


@FAST
@given(predicates)
def test_single_operand_root_and_or_share_a_key(predicate):
    assert key_of(render({"and": [predicate]})) == key_of(render({"or": [predicate]}))


@FAST
@given(roots, st.data())
def test_double_not_shares_a_key_with_its_operand(root, data):
    assert key_of(render(double_negate(data, root))) == key_of(render(root))


@FAST
@given(roots, st.data())
def test_value_in_order_and_duplicates_share_a_key(root, data):
    assert key_of(render(shuffle_value_in(data, root))) == key_of(render(root))


@FAST
@given(st.sampled_from((*ANNOTATION_KEYS, NAME)), values, st.integers(1, 3))
def test_value_in_with_one_distinct_value_shares_a_key_with_value_equals(key, value, copies):
    value_in = {"and": [{"value_in": {"key": key, "values": [value] * copies}}]}
    value_equals = {"and": [{"value_equals": {"key": key, "value": value}}]}
    assert key_of(render(value_in)) == key_of(render(value_equals))


@FAST
@given(roots, st.data())
def test_timestamps_in_other_utc_offsets_for_the_same_instant_share_a_key(root, data):
    assert key_of(json.dumps(render_with_offsets(data, root))) == key_of(render(root))


def test_the_contracts_example_of_one_instant_in_two_offsets_shares_a_key():
    template = '{"and": [{"time_range": {"key": "%s", "start_time": "%s"}}]}'
    assert key_of(template % (CREATED_AT, "2026-01-01T01:00:00+01:00")) == key_of(
        template % (CREATED_AT, "2026-01-01T00:00:00Z")
    )


@FAST
@given(roots, status_lists, st.data())
def test_status_parameter_order_and_duplicates_share_a_key(root, statuses, data):
    shuffled = data.draw(st.permutations(statuses + statuses[:2]))
    assert key_of(render(root), shuffled) == key_of(render(root), statuses)


def within_limits(node: Any, depth: int = 0) -> tuple[int, int]:
    """(deepest nesting, predicate count) as the grammar's limits count them."""
    ((name, body),) = node.items()
    children = body if name in ("and", "or") else [body] if name == "not" else []
    deepest, count = depth, 0
    for child in children:
        child_depth, child_count = within_limits(child, depth + 1)
        deepest, count = max(deepest, child_depth), count + 1 + child_count
    return deepest, count


def fits(node: Filter) -> bool:
    depth, count = within_limits(node)
    return depth <= MAX_DEPTH and count <= MAX_PREDICATES and len(render(node)) < 4000


@FAST
@given(roots, st.data())
def test_every_rewrite_at_once_shares_a_key(root, data):
    rewritten = root
    for rewrite in (
        shuffle_value_in,
        duplicate_operands,
        nest_same_kind,
        double_negate,
        wrap_in_single_operand,
        permute_operands,
    ):
        candidate = rewrite(data, rewritten)
        rewritten = candidate if fits(candidate) else rewritten
    text = json.dumps(reorder_object_keys(data, render_with_offsets(data, rewritten)))
    assert key_of(text) == key_of(render(root))


def test_no_status_parameter_and_an_empty_one_share_a_key():
    assert cache_key(None, None) == cache_key(None, [])


# --- different meanings, different keys --------------------------------------------------------


def _with_probe(root: Filter, leaf: Filter) -> str:
    ((name, body),) = root.items()
    return render({name: [*body, leaf]} if name == "and" else {"and": [root, leaf]})


@FAST
@given(roots, values, values)
def test_a_different_value_gives_a_different_key(root, first, second):
    if first == second:
        second = first + "x"
    leaf = {"value_equals": {"key": PROBE_KEY, "value": first}}
    other = {"value_equals": {"key": PROBE_KEY, "value": second}}
    assert key_of(_with_probe(root, leaf)) != key_of(_with_probe(root, other))


@FAST
@given(roots, values)
def test_a_different_key_gives_a_different_key(root, value):
    leaf = {"value_equals": {"key": PROBE_KEY, "value": value}}
    other = {"value_equals": {"key": OTHER_PROBE_KEY, "value": value}}
    assert key_of(_with_probe(root, leaf)) != key_of(_with_probe(root, other))


@FAST
@given(values, values)
def test_and_and_or_of_the_same_operands_give_different_keys(first, second):
    operands = [
        {"value_equals": {"key": PROBE_KEY, "value": first}},
        {"value_equals": {"key": OTHER_PROBE_KEY, "value": second}},
    ]
    assert key_of(render({"and": operands})) != key_of(render({"or": operands}))


@FAST
@given(roots)
def test_a_predicate_and_its_negation_give_different_keys(root):
    assert key_of(render(root)) != key_of(render({"and": [{"not": root}]}))


@FAST
@given(roots, st.lists(st.sampled_from(STATUSES), min_size=1, unique=True))
def test_a_status_parameter_gives_a_different_key_than_none(root, statuses):
    assert key_of(render(root), statuses) != key_of(render(root))


@FAST
@given(roots, instants, st.integers(1, 10**6))
def test_a_different_instant_gives_a_different_key(root, moment, delta_us):
    later = moment + timedelta(microseconds=delta_us)
    first = {"time_range": {"key": CREATED_AT, "start_time": moment}}
    second = {"time_range": {"key": CREATED_AT, "start_time": later}}
    assert key_of(_with_probe(root, first)) != key_of(_with_probe(root, second))


# --- "me" -----------------------------------------------------------------------------------

ME_FILTER = render({"and": [{"value_equals": {"key": CREATED_BY, "value": "me"}}]})
ME_IN_FILTER = render({"or": [{"value_in": {"key": CREATED_BY, "values": ["me", "carol"]}}]})

users = st.text(characters, min_size=1, max_size=8)


@FAST
@given(st.sampled_from((ME_FILTER, ME_IN_FILTER)), users, users)
def test_me_for_two_users_gives_two_keys(text, user_a, user_b):
    if user_a == user_b:
        user_b = user_a + "x"
    assert key_of(text, user=user_a) != key_of(text, user=user_b)


@FAST
@given(users)
def test_me_resolved_shares_a_key_with_the_user_named_outright(user):
    named = render({"and": [{"value_equals": {"key": CREATED_BY, "value": user}}]})
    assert key_of(ME_FILTER, user=user) == key_of(named)


# --- the key itself -------------------------------------------------------------------------


@FAST
@given(roots, status_lists)
def test_key_is_prefix_version_and_a_braced_sha256(root, statuses):
    assert KEY_PATTERN.match(key_of(render(root), statuses))


def test_bumping_the_payload_version_moves_keys_to_another_namespace(monkeypatch):
    text = render({"and": [{"key_exists": {"key": "team"}}]})
    before = key_of(text)
    monkeypatch.setattr(canonical, "PAYLOAD_VERSION", canonical.PAYLOAD_VERSION + 1)
    after = key_of(text)
    assert after.startswith(f"runstats:stats:v{canonical.PAYLOAD_VERSION}:{{")
    assert after != before


HASHSEED_SCRIPT = """
import json, sys
from runstats_app.filters.schema import MAX_DEPTH, MAX_PREDICATES, parse_filter_query
from runstats_app.stats.canonical import cache_key
cases = json.load(sys.stdin)
print(json.dumps([cache_key(parse_filter_query(text), statuses) for text, statuses in cases]))
"""


def _keys_in_subprocess(cases: list[tuple[str, list[str]]], hashseed: str) -> list[str]:
    completed = subprocess.run(
        [sys.executable, "-c", HASHSEED_SCRIPT],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env={"PYTHONHASHSEED": hashseed, "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    keys: list[str] = json.loads(completed.stdout)
    return keys


def test_key_does_not_depend_on_python_hash_randomisation():
    many = [f"v{i}" for i in range(30)]
    cases = [
        (render({"and": [{"value_in": {"key": "team", "values": many}}]}), []),
        (
            render(
                {"or": [{"value_equals": {"key": k, "value": v}} for k in many[:8] for v in "ab"]}
            ),
            [],
        ),
        (render({"and": [{"key_exists": {"key": k}} for k in many]}), list(STATUSES)),
        (ME_FILTER.replace('"me"', '"someone"'), ["FAILED", "RUNNING", "QUEUED"]),
    ]
    expected = [key_of(text, statuses) for text, statuses in cases]
    assert _keys_in_subprocess(cases, "1") == expected
    assert _keys_in_subprocess(cases, "4242") == expected
