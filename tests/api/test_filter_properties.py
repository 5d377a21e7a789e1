"""The list endpoint against a plain-Python reading of the filter_query contract.

Hypothesis builds a handful of runs through the API (tricky names and
annotation values, runs without a creator, runs moved through their
lifecycle) and random filters over every predicate and system key, then
checks that paging through GET /api/pipeline_runs/ yields exactly the ids
tests/support/filter_oracle.py computes, in order. Each example runs inside a
savepoint that is rolled back, so examples never see each other's runs.

Time bounds are generated symbolically ("run #k's created_at plus one
microsecond", sometimes with digits finer than a microsecond) and resolved
against the timestamps the server returned, since created_at cannot be chosen
by a client; filter values likewise often refer to a run's own values.

Examples are derandomized (the same ones every run) to keep CI reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ..support.api import (
    ADMIN,
    PROPERTY_SETTINGS,
    RUNS,
    Auth,
    change_status,
    create_run,
    get_list,
    post_status,
    query_params,
    walk_pages,
)
from ..support.contract import (
    CREATED_AT,
    CREATED_BY,
    NAME,
    NON_TERMINAL,
    STATUS,
    STATUS_UPDATED_AT,
    STATUSES,
)
from ..support.errors import assert_error_envelope
from ..support.filter_oracle import MeUnresolved, Run, expected_ids, newest_first, parse_time
from ..support.filter_strategies import filter_roots, nested_predicates

# Characters that break naive LIKE escaping or ASCII-only case folding.
ALPHABET = ("a", "A", "b", "B", "é", "É", "%", "_", "\\", " ")
ANNOTATION_KEYS = ("team", "Team", "env", "%_\\")
ABSENT_KEY = "nobody-has-this"
CREATORS = (None, None, "alice", "bob", "Alice", "me")
READERS = ("alice", "bob")

# A small shared pool makes equal and overlapping values likely between runs and
# filters; free text over the alphabet adds the odd ones out.
POOL = ("a", "A", "é", "É", "a%", "A_b", "\\", "%_", "aé", "ÉA", "b")
texts = st.sampled_from(("", *POOL)) | st.text(st.sampled_from(ALPHABET), max_size=3)
names = st.sampled_from(POOL) | st.text(st.sampled_from(ALPHABET), min_size=1, max_size=4)
substrings = st.sampled_from((*ALPHABET, "a%", "%_", "_\\", "éA")) | st.text(
    st.sampled_from(ALPHABET), min_size=1, max_size=2
)


# --- runs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    name: str
    created_by: str | None
    annotations: Mapping[str, str]
    status: str
    max_attempts: int
    actions: tuple[tuple[str, ...], ...] = ()


actions = st.one_of(
    st.tuples(st.just("transition"), st.sampled_from(STATUSES)),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("annotate"), st.sampled_from(ANNOTATION_KEYS), texts),
    st.tuples(st.just("unannotate"), st.sampled_from(ANNOTATION_KEYS)),
)

run_specs = st.builds(
    RunSpec,
    name=names,
    created_by=st.sampled_from(CREATORS),
    annotations=st.dictionaries(st.sampled_from(ANNOTATION_KEYS), texts, max_size=3),
    status=st.sampled_from(NON_TERMINAL),
    max_attempts=st.sampled_from((1, 2)),
    actions=st.lists(actions, max_size=3).map(tuple),
)


def build_runs(client: Any, admin: Mapping[str, str], specs: Sequence[RunSpec]) -> list[Run]:
    """Create the runs through the API, apply their actions, return their final state."""
    ids = []
    for spec in specs:
        run = create_run(
            client,
            admin,
            name=spec.name,
            created_by=spec.created_by,
            annotations=dict(spec.annotations),
            status=spec.status,
            max_attempts=spec.max_attempts,
        )
        ids.append(run["id"])
        for action in spec.actions:
            _apply(client, admin, run["id"], action)
    finals = []
    for run_id in ids:
        response = client.get(f"{RUNS}{run_id}")
        assert response.status_code == 200
        finals.append(Run.from_json(response.json))
    return finals


def _apply(client: Any, admin: Mapping[str, str], run_id: str, action: tuple[str, ...]) -> None:
    kind, *args = action
    url = f"{RUNS}{run_id}"
    if kind in ("transition", "cancel"):
        target = args[0] if kind == "transition" else "cancel"
        response = post_status(client, admin, run_id, target)
        assert response.status_code in (200, 409), response.json
    elif kind == "annotate":
        key, value = args
        response = client.put(
            f"{url}/annotations/{quote(key, safe='')}", json={"value": value}, headers=admin
        )
        assert response.status_code == 200, response.json
    else:
        response = client.delete(f"{url}/annotations/{quote(args[0], safe='')}", headers=admin)
        assert response.status_code in (204, 404), response.json


# --- filters ------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeBound:
    """A timestamp relative to one of the created runs, written with some UTC offset
    and, maybe, digits finer than a microsecond (`nanos`, appended to the fraction)."""

    run_index: int
    field: str
    delta_us: int
    offset_minutes: int
    nanos: str = ""


@dataclass(frozen=True)
class FarBound:
    future: bool


FALLBACK_TIME = datetime(2020, 1, 1, tzinfo=UTC)

run_time_bounds = st.builds(
    TimeBound,
    run_index=st.integers(0, 15),
    field=st.sampled_from(("created_at", "status_updated_at")),
    delta_us=st.sampled_from((0, 0, 0, 1, -1)),
    offset_minutes=st.sampled_from((0, 0, 330, -180)),
    nanos=st.sampled_from(("", "", "", "500", "001", "000")),
)
# Mostly bounds on (or a microsecond off) a run's own timestamp: that is where
# inclusive and exclusive differ.
time_bounds = st.one_of(
    run_time_bounds, run_time_bounds, run_time_bounds, st.builds(FarBound, future=st.booleans())
)


@dataclass(frozen=True)
class ValueRef:
    """The value some run has under the predicate's key (a slice of it, for contains).

    Filters built from the runs' own values match often, so the interesting
    "some runs but not all" outcomes are common; swapcase probes case rules.
    """

    run_index: int
    swapcase: bool = False
    start: int = 0
    length: int | None = None


def _refs(key: str, *, sliced: bool = False) -> st.SearchStrategy[ValueRef]:
    return st.builds(
        ValueRef,
        run_index=st.integers(0, 15),
        swapcase=st.just(False) if key == STATUS else st.booleans(),
        start=st.integers(0, 2) if sliced else st.just(0),
        length=st.integers(1, 3) if sliced else st.none(),
    )


def _values_for(key: str) -> st.SearchStrategy[str | ValueRef]:
    if key == CREATED_BY:
        fixed = st.sampled_from(("me", "alice", "bob", "Alice", "me", "", "carol"))
    elif key == STATUS:
        fixed = st.sampled_from(STATUSES)
    else:
        fixed = texts | st.just("me")
    return fixed | _refs(key)


def _leaf(predicate: str, keys: Sequence[str]) -> st.SearchStrategy[dict[str, Any]]:
    key_strategy = st.sampled_from(keys)
    if predicate == "key_exists":
        return key_strategy.map(lambda key: {"key_exists": {"key": key}})
    if predicate == "value_contains":
        return key_strategy.flatmap(
            lambda key: (substrings | _refs(key, sliced=True)).map(
                lambda sub: {"value_contains": {"key": key, "value_substring": sub}}
            )
        )
    if predicate == "value_equals":
        return key_strategy.flatmap(
            lambda key: _values_for(key).map(
                lambda value: {"value_equals": {"key": key, "value": value}}
            )
        )
    if predicate == "value_in":
        return key_strategy.flatmap(
            lambda key: st.lists(_values_for(key), min_size=1, max_size=3).map(
                lambda values: {"value_in": {"key": key, "values": values}}
            )
        )
    assert predicate == "time_range"
    return st.builds(
        lambda key, bounds: {
            "time_range": {"key": key, "start_time": bounds[0], "end_time": bounds[1]}
        },
        key_strategy,
        st.one_of(
            st.tuples(time_bounds, st.none()),
            st.tuples(st.none(), time_bounds),
            st.tuples(time_bounds, time_bounds),
        ),
    )


LEAVES = st.one_of(
    _leaf("key_exists", (*ANNOTATION_KEYS, ABSENT_KEY, CREATED_BY, NAME)),
    _leaf("value_equals", (*ANNOTATION_KEYS, ABSENT_KEY, CREATED_BY, NAME, STATUS)),
    _leaf("value_contains", (*ANNOTATION_KEYS, NAME)),
    _leaf("value_in", (*ANNOTATION_KEYS, CREATED_BY, NAME, STATUS)),
    _leaf("time_range", (CREATED_AT, STATUS_UPDATED_AT)),
)


# Leaves twice as likely as each combinator: most predicates stay small.
PREDICATES = nested_predicates(LEAVES, 3, leaf_weight=2)
root_filters = filter_roots(PREDICATES, max_size=3)


@dataclass(frozen=True)
class Requester:
    """Who asks: an authenticated reader (token_user) and/or a current_user parameter."""

    token_user: str | None
    current_user: str | None

    @property
    def me(self) -> str | None:
        return self.token_user or self.current_user


requesters = st.builds(
    Requester,
    token_user=st.sampled_from((None, None, *READERS)),
    current_user=st.sampled_from((None, "alice", "bob", "Alice", "me")),
)


@dataclass(frozen=True)
class ListQuery:
    filter_query: dict[str, Any] | None
    statuses: tuple[str, ...]
    requester: Requester
    page_size: int
    ensure_ascii: bool = True


list_queries = st.builds(
    ListQuery,
    filter_query=st.none() | root_filters | root_filters,
    statuses=st.just(()) | st.lists(st.sampled_from(STATUSES), max_size=3, unique=True).map(tuple),
    requester=requesters,
    page_size=st.integers(1, 6) | st.just(100),
    ensure_ascii=st.booleans(),
)


BoundValue = tuple[datetime, int, str]  # moment, UTC offset in minutes, sub-microsecond digits


def _format_time(moment: datetime, offset_minutes: int, nanos: str) -> str:
    text = moment.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat(
        timespec="microseconds"
    )
    stamp, zone = text[:26], text[26:]  # YYYY-MM-DDTHH:MM:SS.ffffff, then the offset
    return f"{stamp}{nanos}{'Z' if zone == '+00:00' else zone}"


def _bound_time(bound: TimeBound | FarBound, runs: Sequence[Run]) -> BoundValue:
    if isinstance(bound, FarBound):
        return datetime(2999 if bound.future else 1971, 1, 1, tzinfo=UTC), 0, ""
    base = getattr(runs[bound.run_index % len(runs)], bound.field) if runs else FALLBACK_TIME
    return base + timedelta(microseconds=bound.delta_us), bound.offset_minutes, bound.nanos


def _instant(value: BoundValue) -> tuple[datetime, int]:
    return value[0], int(value[2] or 0)


def _run_value(run: Run, key: str) -> str:
    if key == NAME:
        return run.name
    if key == STATUS:
        return run.status
    if key == CREATED_BY:
        return run.created_by or "alice"
    return run.annotations.get(key, "a")


def _resolve_ref(ref: str | ValueRef, key: str, runs: Sequence[Run]) -> str:
    if not isinstance(ref, ValueRef):
        return ref
    value = _run_value(runs[ref.run_index % len(runs)], key) if runs else "a"
    if ref.length is not None:
        value = value[ref.start : ref.start + ref.length] or value or "a"
    return value.swapcase() if ref.swapcase else value


def _resolve_leaf(name: str, body: dict[str, Any], runs: Sequence[Run]) -> dict[str, Any]:
    key = body["key"]
    if name == "time_range":
        bounds = {
            side: _bound_time(body[side], runs)
            for side in ("start_time", "end_time")
            if body[side] is not None
        }
        if len(bounds) == 2 and _instant(bounds["start_time"]) > _instant(bounds["end_time"]):
            bounds = {"start_time": bounds["end_time"], "end_time": bounds["start_time"]}
        return {"key": key, **{side: _format_time(*value) for side, value in bounds.items()}}
    resolved = dict(body)
    if "value" in body:
        resolved["value"] = _resolve_ref(body["value"], key, runs)
    if "value_substring" in body:
        resolved["value_substring"] = _resolve_ref(body["value_substring"], key, runs)
    if "values" in body:
        resolved["values"] = [_resolve_ref(value, key, runs) for value in body["values"]]
    return resolved


def resolve_symbols(predicate: Any, runs: Sequence[Run]) -> Any:
    """Replace symbolic time bounds and value references by what the runs hold.

    Time bounds become RFC 3339 text (swapped, if need be, so that start <= end).
    """
    if predicate is None:
        return None
    ((name, body),) = predicate.items()
    if name in ("and", "or"):
        return {name: [resolve_symbols(item, runs) for item in body]}
    if name == "not":
        return {name: resolve_symbols(body, runs)}
    return {name: _resolve_leaf(name, body, runs)}


# --- checking -----------------------------------------------------------------------


def _headers(auth: Auth, requester: Requester) -> dict[str, str]:
    return auth(requester.token_user, "reader") if requester.token_user else {}


def listed_ids(client: Any, auth: Auth, query: ListQuery, filter_query: Any) -> list[str]:
    params = query_params(
        filter_query,
        query.statuses,
        current_user=query.requester.current_user,
        ensure_ascii=query.ensure_ascii,
    )
    return walk_pages(client, params, query.page_size, _headers(auth, query.requester))


def check_query(client: Any, auth: Auth, runs: Sequence[Run], query: ListQuery) -> None:
    filter_query = resolve_symbols(query.filter_query, runs)
    try:
        expected = expected_ids(runs, filter_query, query.statuses, query.requester.me)
    except MeUnresolved:
        params = query_params(filter_query, query.statuses, page_size=query.page_size)
        assert_error_envelope(get_list(client, params), 400)
        return
    assert listed_ids(client, auth, query, filter_query) == expected, filter_query


def list_all(client: Any, filter_query: Any) -> list[str]:
    """Every id an anonymous request with current_user=alice pages through."""
    return walk_pages(client, query_params(filter_query, current_user="alice"), 100)


def _prepare_tokens(auth: Auth) -> dict[str, str]:
    """Create every token up front, outside the per-example savepoints."""
    for user in READERS:
        auth(user, "reader")
    return auth(*ADMIN)


@settings(PROPERTY_SETTINGS, max_examples=100)
@given(
    specs=st.lists(run_specs, min_size=2, max_size=8),
    queries=st.lists(list_queries, min_size=1, max_size=3),
)
def test_list_pages_through_exactly_the_runs_the_oracle_selects_newest_first(
    client, auth, savepoint, specs, queries
):
    admin = _prepare_tokens(auth)
    with savepoint():
        runs = build_runs(client, admin, specs)
        for query in queries:
            check_query(client, auth, runs, query)


@settings(PROPERTY_SETTINGS, max_examples=60)
@given(
    specs=st.lists(run_specs, min_size=3, max_size=8),
    leaves=st.lists(LEAVES, min_size=4, max_size=10),
)
def test_each_predicate_and_its_negation_select_what_the_oracle_selects(
    client, auth, savepoint, specs, leaves
):
    """Leaves one at a time, where no other predicate can hide a wrong answer."""
    admin = _prepare_tokens(auth)
    with savepoint():
        runs = build_runs(client, admin, specs)
        for leaf in leaves:
            resolved = resolve_symbols(leaf, runs)
            for filter_query in ({"and": [resolved]}, {"and": [{"not": resolved}]}):
                expected = expected_ids(runs, filter_query, (), me="alice")
                assert list_all(client, filter_query) == expected, filter_query


@settings(PROPERTY_SETTINGS, max_examples=40)
@given(
    specs=st.lists(run_specs, min_size=2, max_size=8),
    operands=st.lists(PREDICATES, min_size=3, max_size=6),
)
def test_not_selects_exactly_the_runs_its_operand_leaves_out(
    client, auth, savepoint, specs, operands
):
    """Independent of the oracle: `p` and `not p` partition the runs, order kept."""
    admin = _prepare_tokens(auth)
    with savepoint():
        runs = build_runs(client, admin, specs)
        every = list_all(client, None)
        for operand in operands:
            resolved = resolve_symbols(operand, runs)
            selected = list_all(client, {"and": [resolved]})
            rejected = list_all(client, {"and": [{"not": resolved}]})
            assert sorted(selected + rejected) == sorted(every), resolved
            assert not set(selected) & set(rejected), resolved
            assert selected == [run_id for run_id in every if run_id in set(selected)]
            assert rejected == [run_id for run_id in every if run_id in set(rejected)]


# --- the contract's rules, one example each ------------------------------------------
#
# These pin both the API and the oracle to hand-computed answers, so the oracle
# cannot drift from the contract unnoticed.


def assert_lists(
    client: Any,
    runs: Sequence[dict[str, Any]],
    filter_query: dict[str, Any] | None,
    expected: Sequence[dict[str, Any]],
    *,
    statuses: Sequence[str] = (),
    current_user: str | None = None,
    headers: Mapping[str, str] | None = None,
    me: str | None = None,
) -> None:
    """The API and the oracle both select `expected`, newest first."""
    want = newest_first(expected)
    oracle = expected_ids(
        [Run.from_json(run) for run in runs], filter_query, statuses, me or current_user
    )
    assert oracle == want, "the oracle disagrees with the contract"
    params = query_params(filter_query, statuses, current_user=current_user)
    assert walk_pages(client, params, 2, headers) == want


def _leaf_filter(predicate: str, **body: Any) -> dict[str, Any]:
    return {"and": [{predicate: body}]}


def test_not_value_equals_created_by_matches_runs_without_a_creator(client, auth):
    admin = auth(*ADMIN)
    system = create_run(client, admin, created_by=None)
    alice = create_run(client, admin, created_by="alice")
    bob = create_run(client, admin, created_by="bob")
    query = {"and": [{"not": {"value_equals": {"key": CREATED_BY, "value": "alice"}}}]}
    assert_lists(client, [system, alice, bob], query, [system, bob])


def test_key_exists_on_created_by_is_false_only_for_runs_without_a_creator(client, auth):
    admin = auth(*ADMIN)
    system = create_run(client, admin, created_by=None)
    alice = create_run(client, admin, created_by="alice")
    query = _leaf_filter("key_exists", key=CREATED_BY)
    assert_lists(client, [system, alice], query, [alice])


def test_key_exists_on_name_matches_every_run(client, auth):
    admin = auth(*ADMIN)
    runs = [create_run(client, admin, created_by=None), create_run(client, admin)]
    assert_lists(client, runs, _leaf_filter("key_exists", key=NAME), runs)


def test_key_exists_on_an_annotation_matches_an_empty_value(client, auth):
    admin = auth(*ADMIN)
    empty = create_run(client, admin, annotations={"team": ""})
    other = create_run(client, admin, annotations={"Team": "x"})
    assert_lists(client, [empty, other], _leaf_filter("key_exists", key="team"), [empty])


@pytest.mark.parametrize(
    ("substring", "matching_names"),
    [
        ("%", ["100%"]),
        ("_", ["a_b"]),
        ("\\", ["back\\slash"]),
        ("a_", ["a_b"]),
        ("0%", ["100%"]),
    ],
)
def test_value_contains_matches_like_wildcards_and_backslash_literally(
    client, auth, substring, matching_names
):
    admin = auth(*ADMIN)
    runs = [
        create_run(client, admin, name=name)
        for name in ("100%", "1000", "a_b", "axb", "back\\slash", "backslash")
    ]
    query = _leaf_filter("value_contains", key=NAME, value_substring=substring)
    assert_lists(client, runs, query, [r for r in runs if r["name"] in matching_names])


def test_value_contains_ignores_case_of_non_ascii_letters(client, auth):
    admin = auth(*ADMIN)
    upper = create_run(client, admin, annotations={"team": "ÉQUIPE"})
    lower = create_run(client, admin, annotations={"team": "équipe"})
    plain = create_run(client, admin, annotations={"team": "equipe"})
    query = _leaf_filter("value_contains", key="team", value_substring="Équ")
    assert_lists(client, [upper, lower, plain], query, [upper, lower])


@pytest.mark.parametrize(
    "query",
    [
        _leaf_filter("value_equals", key="team", value="Équipe"),
        _leaf_filter("value_in", key="team", values=["Équipe", "x"]),
    ],
    ids=["value_equals", "value_in"],
)
def test_exact_predicates_are_case_sensitive(client, auth, query):
    admin = auth(*ADMIN)
    exact = create_run(client, admin, annotations={"team": "Équipe"})
    other_case = create_run(client, admin, annotations={"team": "équipe"})
    assert_lists(client, [exact, other_case], query, [exact])


def test_me_resolves_to_current_user_for_an_anonymous_request(client, auth):
    admin = auth(*ADMIN)
    alice = create_run(client, admin, created_by="alice")
    bob = create_run(client, admin, created_by="bob")
    query = _leaf_filter("value_in", key=CREATED_BY, values=["me"])
    assert_lists(client, [alice, bob], query, [bob], current_user="bob")


def test_me_resolves_to_the_token_user_not_to_current_user(client, auth):
    admin = auth(*ADMIN)
    alice = create_run(client, admin, created_by="alice")
    bob = create_run(client, admin, created_by="bob")
    query = _leaf_filter("value_equals", key=CREATED_BY, value="me")
    assert_lists(
        client,
        [alice, bob],
        query,
        [alice],
        current_user="bob",
        headers=auth("alice", "reader"),
        me="alice",
    )


def test_me_is_a_plain_value_outside_the_creator_key(client, auth):
    admin = auth(*ADMIN)
    literal = create_run(client, admin, annotations={"owner": "me"})
    alice = create_run(client, admin, annotations={"owner": "alice"})
    query = _leaf_filter("value_equals", key="owner", value="me")
    assert_lists(client, [literal, alice], query, [literal], current_user="alice")


def test_me_without_a_token_or_current_user_is_400(client):
    query = _leaf_filter("value_equals", key=CREATED_BY, value="me")
    assert_error_envelope(get_list(client, query_params(query)), 400)


def test_status_parameter_is_anded_with_filter_query(client, auth):
    admin = auth(*ADMIN)
    queued_a = create_run(client, admin, annotations={"team": "a"})
    running_a = create_run(client, admin, annotations={"team": "a"}, status="RUNNING")
    running_b = create_run(client, admin, annotations={"team": "b"}, status="RUNNING")
    cancelled_a = change_status(
        client, admin, create_run(client, admin, annotations={"team": "a"})["id"], "cancel"
    )
    runs = [queued_a, running_a, running_b, cancelled_a]
    query = _leaf_filter("value_equals", key="team", value="a")
    assert_lists(client, runs, query, [running_a, cancelled_a], statuses=["RUNNING", "CANCELLED"])


def test_status_key_sees_the_status_after_transitions(client, auth):
    admin = auth(*ADMIN)
    succeeded = create_run(client, admin, status="RUNNING")
    succeeded = change_status(client, admin, succeeded["id"], "SUCCEEDED")
    retried = create_run(client, admin, status="RUNNING", max_attempts=2)
    retried = change_status(client, admin, retried["id"], "FAILED")
    assert retried["status"] == "PENDING"
    queued = create_run(client, admin)
    query = _leaf_filter("value_in", key=STATUS, values=["SUCCEEDED", "PENDING"])
    assert_lists(client, [succeeded, retried, queued], query, [succeeded, retried])


@pytest.mark.parametrize("key", [CREATED_AT, STATUS_UPDATED_AT])
def test_time_range_includes_its_start_and_excludes_its_end(client, auth, key):
    admin = auth(*ADMIN)
    first, second, third, fourth = (create_run(client, admin) for _ in range(4))
    # Moving the older runs last makes status_updated_at order differ from created_at.
    second = change_status(client, admin, second["id"], "cancel")
    first = change_status(client, admin, first["id"], "cancel")
    runs = [first, second, third, fourth]
    field_name = "created_at" if key == CREATED_AT else "status_updated_at"
    by_time = sorted(runs, key=lambda run: parse_time(run[field_name]))
    assert len({run[field_name] for run in runs}) == 4
    query = _leaf_filter(
        "time_range",
        key=key,
        start_time=by_time[1][field_name],
        end_time=by_time[3][field_name],
    )
    assert_lists(client, runs, query, by_time[1:3])


@pytest.mark.parametrize(("side", "selects_the_run"), [("start_time", False), ("end_time", True)])
def test_time_range_bound_between_two_microseconds_keeps_its_exact_meaning(
    client, auth, side, selects_the_run
):
    run = create_run(client, auth(*ADMIN))
    half_a_microsecond_later = _format_time(parse_time(run["created_at"]), 0, "500")
    query = _leaf_filter("time_range", key=CREATED_AT, **{side: half_a_microsecond_later})
    assert_lists(client, [run], query, [run] if selects_the_run else [])
