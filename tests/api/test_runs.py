"""Creating and reading runs, and who may do what to them."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from runstats_app.auth import revoke_token
from runstats_app.extensions import db

from ..support.api import RUNS, UNKNOWN_RUN, Auth, create_run, post_run, post_status
from ..support.errors import assert_error_envelope

RUN_FIELDS = {
    "id",
    "name",
    "created_by",
    "created_at",
    "updated_at",
    "status",
    "status_updated_at",
    "started_at",
    "ended_at",
    "duration_seconds",
    "attempt",
    "max_attempts",
    "annotations",
}


def parse_ts(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


# --- create -----------------------------------------------------------------------------


def test_create_returns_201_with_every_run_field(client: FlaskClient, auth: Auth) -> None:
    response = post_run(client, auth())
    assert response.status_code == 201
    assert set(response.get_json()) == RUN_FIELDS


def test_new_run_defaults_to_queued_attempt_1_of_1(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth())
    assert (run["status"], run["attempt"], run["max_attempts"]) == ("QUEUED", 1, 1)


def test_new_run_has_no_start_end_duration_or_annotations(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth())
    assert run["started_at"] is None
    assert run["ended_at"] is None
    assert run["duration_seconds"] is None
    assert run["annotations"] == {}


def test_created_by_defaults_to_the_token_user(client: FlaskClient, auth: Auth) -> None:
    assert create_run(client, auth("carol"))["created_by"] == "carol"


def test_new_run_updated_at_and_status_updated_at_equal_created_at(
    client: FlaskClient, auth: Auth
) -> None:
    run = create_run(client, auth())
    assert run["status_updated_at"] == run["created_at"]
    assert run["updated_at"] == run["created_at"]


def test_timestamps_are_utc_with_z_suffix(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth(), status="RUNNING")
    for field in ("created_at", "updated_at", "status_updated_at", "started_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z", run[field]), field


def test_created_at_is_the_server_time(client: FlaskClient, auth: Auth) -> None:
    before = datetime.now().astimezone()
    run = create_run(client, auth())
    after = datetime.now().astimezone()
    assert before <= parse_ts(run["created_at"]) <= after


def test_create_keeps_name_annotations_and_max_attempts(client: FlaskClient, auth: Auth) -> None:
    run = create_run(
        client,
        auth(),
        name="nightly-etl",
        max_attempts=3,
        annotations={"team": "ml", "team/owner": "alice", "empty": ""},
    )
    assert run["name"] == "nightly-etl"
    assert run["max_attempts"] == 3
    assert run["annotations"] == {"team": "ml", "team/owner": "alice", "empty": ""}


@pytest.mark.parametrize("max_attempts", [1, 10])
def test_max_attempts_bounds_are_accepted(
    client: FlaskClient, auth: Auth, max_attempts: int
) -> None:
    assert create_run(client, auth(), max_attempts=max_attempts)["max_attempts"] == max_attempts


def test_name_of_255_characters_is_accepted(client: FlaskClient, auth: Auth) -> None:
    assert create_run(client, auth(), name="n" * 255)["name"] == "n" * 255


@pytest.mark.parametrize("status", ["QUEUED", "PENDING", "RUNNING", "CANCELLING"])
def test_create_in_a_non_terminal_status(client: FlaskClient, auth: Auth, status: str) -> None:
    assert create_run(client, auth(), status=status)["status"] == status


def test_run_created_running_has_started_at_equal_to_created_at(
    client: FlaskClient, auth: Auth
) -> None:
    run = create_run(client, auth(), status="RUNNING")
    assert run["started_at"] == run["created_at"]


def test_run_ids_are_distinct_lowercase_letters_and_digits(
    client: FlaskClient, auth: Auth
) -> None:
    ids = [create_run(client, auth())["id"] for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(re.fullmatch(r"[a-z0-9]+", run_id) for run_id in ids)


# --- get --------------------------------------------------------------------------------


def test_get_returns_the_created_run(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth(), annotations={"team": "ml"})
    response = client.get(f"{RUNS}{run['id']}")
    assert response.status_code == 200
    assert response.get_json() == run


def test_get_unknown_run_is_404_envelope(client: FlaskClient) -> None:
    assert_error_envelope(client.get(f"{RUNS}{UNKNOWN_RUN}"), 404)


def test_get_needs_no_token(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth())
    assert client.get(f"{RUNS}{run['id']}").status_code == 200


def test_reader_may_read(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth())
    assert client.get(f"{RUNS}{run['id']}", headers=auth("rita", "reader")).status_code == 200


# --- created_by -------------------------------------------------------------------------


def test_writer_may_name_themselves_as_creator(client: FlaskClient, auth: Auth) -> None:
    assert create_run(client, auth("alice"), created_by="alice")["created_by"] == "alice"


def test_writer_naming_someone_else_is_403(client: FlaskClient, auth: Auth) -> None:
    assert_error_envelope(post_run(client, auth("alice"), created_by="bob"), 403)
    assert client.get(RUNS).get_json()["pipeline_runs"] == []


def test_writer_may_not_create_a_run_without_creator(client: FlaskClient, auth: Auth) -> None:
    assert_error_envelope(post_run(client, auth("alice"), created_by=None), 403)


def test_admin_may_name_anyone_as_creator(client: FlaskClient, auth: Auth) -> None:
    assert create_run(client, auth("root", "admin"), created_by="bob")["created_by"] == "bob"


def test_admin_may_create_a_run_without_creator(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth("root", "admin"), created_by=None)
    assert run["created_by"] is None
    assert client.get(f"{RUNS}{run['id']}").get_json()["created_by"] is None


# --- authentication and roles -----------------------------------------------------------


def test_reader_cannot_create_403(client: FlaskClient, auth: Auth) -> None:
    assert_error_envelope(post_run(client, auth("rita", "reader")), 403)


def test_create_without_token_is_401(client: FlaskClient) -> None:
    response = client.post(RUNS, json={"name": "train"})
    assert_error_envelope(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    ["Bearer rst_not-a-real-token", "Bearer ", "Basic YWxpY2U6c2VjcmV0", "rst_token"],
    ids=["unknown-token", "empty-bearer", "basic-scheme", "no-scheme"],
)
def test_invalid_token_is_401_on_create(client: FlaskClient, header: str) -> None:
    assert_error_envelope(
        client.post(RUNS, json={"name": "x"}, headers={"Authorization": header}), 401
    )


@pytest.mark.parametrize("path", ["", "{id}", "{id}/history"], ids=["list", "get", "history"])
def test_invalid_token_is_401_even_on_get(client: FlaskClient, auth: Auth, path: str) -> None:
    run = create_run(client, auth())
    response = client.get(
        RUNS + path.format(id=run["id"]),
        headers={"Authorization": "Bearer rst_not-a-real-token"},
    )
    assert_error_envelope(response, 401)


def test_revoked_token_is_401(
    app: Flask, client: FlaskClient, token_for: Callable[[str, str], str]
) -> None:
    token = token_for("alice", "writer")
    headers = {"Authorization": f"Bearer {token}"}
    assert post_run(client, headers).status_code == 201
    with app.app_context():
        session = db.session()
        assert revoke_token(session, token)
        session.commit()
    assert_error_envelope(post_run(client, headers), 401)
    assert_error_envelope(client.get(RUNS, headers=headers), 401)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "{id}/transitions", {"status": "RUNNING"}),
        ("POST", "{id}/cancel", None),
        ("PUT", "{id}/annotations/team", {"value": "ml"}),
        ("DELETE", "{id}/annotations/team", None),
    ],
    ids=["transition", "cancel", "put-annotation", "delete-annotation"],
)
@pytest.mark.parametrize(
    ("role", "code"), [("reader", 403), (None, 401)], ids=["reader", "no-token"]
)
def test_change_needs_writer_role(
    client: FlaskClient,
    auth: Auth,
    method: str,
    path: str,
    body: Any,
    role: str | None,
    code: int,
) -> None:
    run = create_run(client, auth("alice"), annotations={"team": "ml"})
    headers = auth("alice", role) if role else {}
    response = client.open(
        RUNS + path.format(id=run["id"]), method=method, json=body, headers=headers
    )
    assert_error_envelope(response, code)
    assert client.get(f"{RUNS}{run['id']}").get_json() == run


# --- changing someone else's run --------------------------------------------------------


def test_another_writer_cannot_change_a_run_403(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth("alice"))
    response = post_status(client, auth("bob"), run["id"], "RUNNING")
    assert_error_envelope(response, 403)
    assert client.get(f"{RUNS}{run['id']}").get_json() == run


def test_another_writer_cannot_cancel_a_run_403(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth("alice"))
    assert_error_envelope(post_status(client, auth("bob"), run["id"], "cancel"), 403)
    assert client.get(f"{RUNS}{run['id']}").get_json()["status"] == "QUEUED"


def test_owner_may_change_their_run(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth("alice"))
    response = post_status(client, auth("alice"), run["id"], "RUNNING")
    assert response.status_code == 200
    assert response.get_json()["status"] == "RUNNING"


def test_admin_may_change_someone_elses_run(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth("alice"))
    response = post_status(client, auth("root", "admin"), run["id"], "RUNNING")
    assert response.status_code == 200
    assert response.get_json()["status"] == "RUNNING"


def test_only_admin_may_change_a_run_without_creator(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth("root", "admin"), created_by=None)
    assert_error_envelope(post_status(client, auth("alice"), run["id"], "RUNNING"), 403)
    assert post_status(client, auth("root", "admin"), run["id"], "RUNNING").status_code == 200


def test_admin_may_cancel_someone_elses_run(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth("root", "admin"), created_by="alice")
    response = post_status(client, auth("ops", "admin"), run["id"], "cancel")
    assert response.status_code == 200
    assert response.get_json()["status"] == "CANCELLED"


def test_change_to_unknown_run_is_404(client: FlaskClient, auth: Auth) -> None:
    response = post_status(client, auth(), UNKNOWN_RUN, "RUNNING")
    assert_error_envelope(response, 404)
