"""Status changes: the transitions table, retries, timestamps, compare-and-set, cancel, history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ..support.api import RUNS, UNKNOWN_RUN, Auth, create_run, post_status
from ..support.contract import STATUSES, TERMINAL
from ..support.errors import assert_error_envelope

# The contract's table, written out here so that the app's copy is what gets tested.
ALLOWED: dict[str, set[str]] = {
    "QUEUED": {"PENDING", "RUNNING", "CANCELLING", "CANCELLED", "SKIPPED", "SYSTEM_ERROR"},
    "PENDING": {"RUNNING", "CANCELLING", "CANCELLED", "FAILED", "SYSTEM_ERROR"},
    "RUNNING": {"SUCCEEDED", "FAILED", "SYSTEM_ERROR", "CANCELLING", "CANCELLED"},
    "CANCELLING": {"CANCELLED", "SUCCEEDED", "FAILED", "SYSTEM_ERROR"},
}
ALLOWED_PAIRS = [(a, b) for a in STATUSES for b in STATUSES if b in ALLOWED.get(a, set())]
FORBIDDEN_PAIRS = [(a, b) for a in STATUSES for b in STATUSES if b not in ALLOWED.get(a, set())]
# How to reach each status: the status to create the run in, then transitions.
ROUTES: dict[str, tuple[str, list[str]]] = {
    "QUEUED": ("QUEUED", []),
    "PENDING": ("PENDING", []),
    "RUNNING": ("RUNNING", []),
    "CANCELLING": ("CANCELLING", []),
    "SUCCEEDED": ("RUNNING", ["SUCCEEDED"]),
    "FAILED": ("RUNNING", ["FAILED"]),
    "SYSTEM_ERROR": ("QUEUED", ["SYSTEM_ERROR"]),
    "CANCELLED": ("QUEUED", ["CANCELLED"]),
    "SKIPPED": ("QUEUED", ["SKIPPED"]),
}
HISTORY_FIELDS = {"from_status", "to_status", "at", "seconds_in_previous_status"}


def pair_id(pair: tuple[str, str]) -> str:
    return f"{pair[0]}->{pair[1]}"


def ts(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


class Runs:
    """A writer's view of the API, with the run bookkeeping the tests need."""

    def __init__(self, client: FlaskClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def create(self, status: str = "QUEUED", **body: Any) -> dict[str, Any]:
        return create_run(self.client, self.headers, status=status, **body)

    def in_status(self, status: str, **body: Any) -> dict[str, Any]:
        initial, steps = ROUTES[status]
        run = self.create(initial, **body)
        for step in steps:
            run = self.ok(self.transition(run["id"], step))
        assert run["status"] == status
        return run

    def transition(self, run_id: str, status: str, **body: Any) -> TestResponse:
        return post_status(self.client, self.headers, run_id, status, **body)

    def cancel(self, run_id: str) -> TestResponse:
        return post_status(self.client, self.headers, run_id, "cancel")

    def get(self, run_id: str) -> dict[str, Any]:
        response = self.client.get(f"{RUNS}{run_id}")
        assert response.status_code == 200
        run: dict[str, Any] = response.get_json()
        return run

    def history(self, run_id: str) -> list[dict[str, Any]]:
        response = self.client.get(f"{RUNS}{run_id}/history")
        assert response.status_code == 200
        rows: list[dict[str, Any]] = response.get_json()
        return rows

    def ok(self, response: TestResponse) -> dict[str, Any]:
        assert response.status_code == 200, response.get_json()
        run: dict[str, Any] = response.get_json()
        return run


@pytest.fixture
def runs(client: FlaskClient, auth: Auth) -> Runs:
    return Runs(client, auth())


def assert_conflict(response: TestResponse, current_status: str) -> None:
    body = assert_error_envelope(response, 409)
    assert body["errors"]["current_status"] == current_status


def history_pairs(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(row["from_status"], row["to_status"]) for row in rows]


# --- the transitions table --------------------------------------------------------------


@pytest.mark.parametrize("pair", ALLOWED_PAIRS, ids=pair_id)
def test_allowed_transition_is_200_with_the_new_status(runs: Runs, pair: tuple[str, str]) -> None:
    source, target = pair
    run = runs.in_status(source)
    changed = runs.ok(runs.transition(run["id"], target))
    assert changed["status"] == target
    assert runs.get(run["id"]) == changed


@pytest.mark.parametrize("pair", ALLOWED_PAIRS, ids=pair_id)
def test_allowed_transition_appends_one_history_row_and_sets_status_updated_at(
    runs: Runs, pair: tuple[str, str]
) -> None:
    source, target = pair
    run = runs.in_status(source)
    before = runs.history(run["id"])
    changed = runs.ok(runs.transition(run["id"], target))
    after = runs.history(run["id"])
    assert after[:-1] == before
    assert history_pairs(after[-1:]) == [(source, target)]
    assert after[-1]["at"] == changed["status_updated_at"] == changed["updated_at"]
    assert ts(changed["status_updated_at"]) > ts(run["status_updated_at"])


@pytest.mark.parametrize("pair", FORBIDDEN_PAIRS, ids=pair_id)
def test_forbidden_transition_is_409_naming_the_current_status_and_changes_nothing(
    runs: Runs, pair: tuple[str, str]
) -> None:
    source, target = pair
    run = runs.in_status(source)
    history = runs.history(run["id"])
    assert_conflict(runs.transition(run["id"], target), source)
    assert runs.get(run["id"]) == run
    assert runs.history(run["id"]) == history


@pytest.mark.parametrize("status", TERMINAL)
def test_terminal_run_rejects_a_transition_even_with_matching_expected_status(
    runs: Runs, status: str
) -> None:
    run = runs.in_status(status)
    assert_conflict(runs.transition(run["id"], "RUNNING", expected_status=status), status)
    assert runs.get(run["id"]) == run


def test_transition_of_unknown_run_is_404(runs: Runs) -> None:
    response = runs.transition(UNKNOWN_RUN, "RUNNING")
    assert response.status_code == 404
    assert response.get_json()["code"] == 404


# --- retries ----------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["RUNNING", "PENDING", "CANCELLING"])
def test_failure_with_attempts_left_becomes_pending_with_the_next_attempt(
    runs: Runs, source: str
) -> None:
    run = runs.in_status(source, max_attempts=3)
    retried = runs.ok(runs.transition(run["id"], "FAILED"))
    assert (retried["status"], retried["attempt"]) == ("PENDING", 2)
    assert retried["ended_at"] is None
    assert runs.get(run["id"]) == retried


def test_retry_is_recorded_in_history_as_a_change_to_pending(runs: Runs) -> None:
    run = runs.in_status("RUNNING", max_attempts=2)
    runs.ok(runs.transition(run["id"], "FAILED"))
    assert history_pairs(runs.history(run["id"])) == [("RUNNING", "PENDING")]


def test_retry_sets_status_updated_at(runs: Runs) -> None:
    run = runs.in_status("RUNNING", max_attempts=2)
    retried = runs.ok(runs.transition(run["id"], "FAILED"))
    assert ts(retried["status_updated_at"]) > ts(run["status_updated_at"])


def test_failure_on_the_last_attempt_is_final(runs: Runs) -> None:
    run = runs.in_status("RUNNING", max_attempts=2)
    runs.ok(runs.transition(run["id"], "FAILED"))
    runs.ok(runs.transition(run["id"], "RUNNING"))
    failed = runs.ok(runs.transition(run["id"], "FAILED"))
    assert (failed["status"], failed["attempt"], failed["max_attempts"]) == ("FAILED", 2, 2)
    assert failed["ended_at"] == failed["status_updated_at"]


def test_queued_to_pending_is_not_a_new_attempt(runs: Runs) -> None:
    run = runs.in_status("QUEUED", max_attempts=3)
    assert runs.ok(runs.transition(run["id"], "PENDING"))["attempt"] == 1


# --- started_at, ended_at, duration -----------------------------------------------------


def test_started_at_is_null_until_the_run_first_runs(runs: Runs) -> None:
    run = runs.in_status("QUEUED")
    assert runs.ok(runs.transition(run["id"], "PENDING"))["started_at"] is None


def test_started_at_is_set_on_entering_running(runs: Runs) -> None:
    run = runs.in_status("QUEUED")
    running = runs.ok(runs.transition(run["id"], "RUNNING"))
    assert running["started_at"] == running["status_updated_at"]


def test_started_at_is_kept_when_a_retry_runs_again(runs: Runs) -> None:
    run = runs.in_status("QUEUED", max_attempts=2)
    first = runs.ok(runs.transition(run["id"], "RUNNING"))["started_at"]
    runs.ok(runs.transition(run["id"], "FAILED"))
    again = runs.ok(runs.transition(run["id"], "RUNNING"))
    assert again["attempt"] == 2
    assert again["started_at"] == first
    assert again["status_updated_at"] != first


@pytest.mark.parametrize(
    "pair",
    [("RUNNING", t) for t in ("SUCCEEDED", "FAILED", "SYSTEM_ERROR", "CANCELLED")]
    + [("QUEUED", "SKIPPED"), ("CANCELLING", "CANCELLED")],
    ids=pair_id,
)
def test_ended_at_is_set_on_entering_a_terminal_status(runs: Runs, pair: tuple[str, str]) -> None:
    source, target = pair
    run = runs.in_status(source)
    ended = runs.ok(runs.transition(run["id"], target))
    assert ended["ended_at"] == ended["status_updated_at"]


def test_ended_at_stays_null_on_a_non_terminal_change(runs: Runs) -> None:
    run = runs.in_status("RUNNING")
    assert runs.ok(runs.transition(run["id"], "CANCELLING"))["ended_at"] is None


def test_duration_is_ended_at_minus_started_at(runs: Runs) -> None:
    run = runs.in_status("QUEUED")
    runs.ok(runs.transition(run["id"], "RUNNING"))
    done = runs.ok(runs.transition(run["id"], "SUCCEEDED"))
    expected = (ts(done["ended_at"]) - ts(done["started_at"])).total_seconds()
    assert expected > 0
    assert done["duration_seconds"] == pytest.approx(expected, abs=1e-6)


def test_duration_is_null_for_a_run_that_never_started(runs: Runs) -> None:
    run = runs.in_status("QUEUED")
    cancelled = runs.ok(runs.transition(run["id"], "CANCELLED"))
    assert cancelled["ended_at"] is not None
    assert cancelled["duration_seconds"] is None


# --- expected_status --------------------------------------------------------------------


def test_matching_expected_status_allows_the_transition(runs: Runs) -> None:
    run = runs.in_status("RUNNING")
    done = runs.ok(runs.transition(run["id"], "SUCCEEDED", expected_status="RUNNING"))
    assert done["status"] == "SUCCEEDED"


def test_stale_expected_status_is_409_and_changes_nothing(runs: Runs) -> None:
    run = runs.in_status("RUNNING")
    history = runs.history(run["id"])
    # RUNNING -> SUCCEEDED is allowed; only the precondition fails.
    assert_conflict(runs.transition(run["id"], "SUCCEEDED", expected_status="QUEUED"), "RUNNING")
    assert runs.get(run["id"]) == run
    assert runs.history(run["id"]) == history


# --- cancel -----------------------------------------------------------------------------


def test_cancel_of_a_running_run_moves_it_to_cancelling(runs: Runs) -> None:
    run = runs.in_status("RUNNING")
    cancelling = runs.ok(runs.cancel(run["id"]))
    assert cancelling["status"] == "CANCELLING"
    assert cancelling["ended_at"] is None
    assert history_pairs(runs.history(run["id"])) == [("RUNNING", "CANCELLING")]


@pytest.mark.parametrize("source", ["QUEUED", "PENDING"])
def test_cancel_of_a_waiting_run_moves_it_straight_to_cancelled(runs: Runs, source: str) -> None:
    run = runs.in_status(source)
    cancelled = runs.ok(runs.cancel(run["id"]))
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["ended_at"] == cancelled["status_updated_at"]
    assert history_pairs(runs.history(run["id"])) == [(source, "CANCELLED")]


def test_cancel_of_a_cancelling_run_is_200_and_changes_nothing(runs: Runs) -> None:
    run = runs.in_status("RUNNING")
    cancelling = runs.ok(runs.cancel(run["id"]))
    history = runs.history(run["id"])
    again = runs.ok(runs.cancel(run["id"]))
    assert again == cancelling
    assert runs.get(run["id"]) == cancelling
    assert runs.history(run["id"]) == history


def test_cancel_of_a_run_created_cancelling_adds_no_history(runs: Runs) -> None:
    run = runs.in_status("CANCELLING")
    assert runs.ok(runs.cancel(run["id"])) == run
    assert runs.history(run["id"]) == []


@pytest.mark.parametrize("status", TERMINAL)
def test_cancel_of_a_terminal_run_is_409(runs: Runs, status: str) -> None:
    run = runs.in_status(status)
    assert_conflict(runs.cancel(run["id"]), status)
    assert runs.get(run["id"]) == run


def test_cancel_of_unknown_run_is_404(runs: Runs) -> None:
    response = runs.cancel(UNKNOWN_RUN)
    assert response.status_code == 404
    assert response.get_json()["code"] == 404


# --- history ----------------------------------------------------------------------------


def test_creation_is_not_a_status_change(runs: Runs) -> None:
    assert runs.history(runs.create("RUNNING")["id"]) == []


def test_history_is_oldest_first(runs: Runs) -> None:
    run = runs.in_status("QUEUED")
    for status in ("PENDING", "RUNNING", "SUCCEEDED"):
        runs.ok(runs.transition(run["id"], status))
    rows = runs.history(run["id"])
    assert history_pairs(rows) == [
        ("QUEUED", "PENDING"),
        ("PENDING", "RUNNING"),
        ("RUNNING", "SUCCEEDED"),
    ]
    assert [ts(row["at"]) for row in rows] == sorted(ts(row["at"]) for row in rows)


def test_history_rows_have_the_contract_fields(runs: Runs) -> None:
    run = runs.in_status("QUEUED")
    runs.ok(runs.transition(run["id"], "RUNNING"))
    (row,) = runs.history(run["id"])
    assert set(row) == HISTORY_FIELDS
    assert row["at"].endswith("Z")
    assert isinstance(row["seconds_in_previous_status"], int | float)


def test_seconds_in_previous_status_is_the_time_since_the_previous_change(runs: Runs) -> None:
    run = runs.in_status("QUEUED", max_attempts=2)
    for status in ("RUNNING", "FAILED", "RUNNING", "SUCCEEDED"):
        runs.ok(runs.transition(run["id"], status))
    rows = runs.history(run["id"])
    previous = ts(run["created_at"])
    for row in rows:
        assert row["seconds_in_previous_status"] >= 0
        expected = (ts(row["at"]) - previous).total_seconds()
        assert row["seconds_in_previous_status"] == pytest.approx(expected, abs=1e-6)
        previous = ts(row["at"])


def test_history_of_unknown_run_is_404(client: FlaskClient) -> None:
    assert_error_envelope(client.get(f"{RUNS}{UNKNOWN_RUN}/history"), 404)


# --- annotation changes are not status changes ------------------------------------------

ANNOTATION_CHANGES = [
    pytest.param("PUT", {"value": "ml"}, id="put"),
    pytest.param("DELETE", None, id="delete"),
]


def annotate(client: FlaskClient, auth: Auth, run_id: str, method: str, body: Any) -> None:
    response = client.open(
        f"{RUNS}{run_id}/annotations/team", method=method, json=body, headers=auth()
    )
    assert response.status_code in (200, 204), response.get_json()


@pytest.mark.parametrize(("method", "body"), ANNOTATION_CHANGES)
def test_annotation_change_keeps_status_and_status_updated_at(
    runs: Runs, client: FlaskClient, auth: Auth, method: str, body: Any
) -> None:
    run = runs.in_status("RUNNING", annotations={"team": "infra"})
    annotate(client, auth, run["id"], method, body)
    after = runs.get(run["id"])
    assert after["status"] == run["status"]
    assert after["status_updated_at"] == run["status_updated_at"]


@pytest.mark.parametrize(("method", "body"), ANNOTATION_CHANGES)
def test_annotation_change_adds_no_history(
    runs: Runs, client: FlaskClient, auth: Auth, method: str, body: Any
) -> None:
    run = runs.in_status("PENDING", annotations={"team": "infra"})
    runs.ok(runs.transition(run["id"], "RUNNING"))
    history = runs.history(run["id"])
    annotate(client, auth, run["id"], method, body)
    assert runs.history(run["id"]) == history


@pytest.mark.parametrize(("method", "body"), ANNOTATION_CHANGES)
def test_annotation_change_advances_updated_at(
    runs: Runs, client: FlaskClient, auth: Auth, method: str, body: Any
) -> None:
    run = runs.in_status("QUEUED", annotations={"team": "infra"})
    annotate(client, auth, run["id"], method, body)
    assert ts(runs.get(run["id"])["updated_at"]) > ts(run["updated_at"])
