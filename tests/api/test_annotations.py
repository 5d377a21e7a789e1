"""Setting, replacing and removing one annotation of a run."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ..support.api import RUNS, UNKNOWN_RUN, Auth, create_run
from ..support.errors import assert_error_envelope


def put(
    client: FlaskClient, headers: dict[str, str], run_id: str, key: str, value: str
) -> TestResponse:
    return client.put(f"{RUNS}{run_id}/annotations/{key}", json={"value": value}, headers=headers)


def delete(client: FlaskClient, headers: dict[str, str], run_id: str, key: str) -> TestResponse:
    return client.delete(f"{RUNS}{run_id}/annotations/{key}", headers=headers)


def annotations(client: FlaskClient, run_id: str) -> dict[str, str]:
    result: dict[str, str] = client.get(f"{RUNS}{run_id}").get_json()["annotations"]
    return result


# --- put --------------------------------------------------------------------------------


def test_put_adds_an_annotation_and_returns_the_run(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth())
    response = put(client, auth(), run["id"], "team", "ml")
    assert response.status_code == 200
    assert response.get_json()["id"] == run["id"]
    assert response.get_json()["annotations"] == {"team": "ml"}
    assert annotations(client, run["id"]) == {"team": "ml"}


def test_put_replaces_an_existing_value(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth(), annotations={"team": "ml", "tier": "gold"})
    response = put(client, auth(), run["id"], "team", "infra")
    assert response.status_code == 200
    assert annotations(client, run["id"]) == {"team": "infra", "tier": "gold"}


@pytest.mark.parametrize("value", ["", "v" * 255], ids=["empty", "255-chars"])
def test_put_accepts_values_of_0_to_255_characters(
    client: FlaskClient, auth: Auth, value: str
) -> None:
    run = create_run(client, auth())
    assert put(client, auth(), run["id"], "team", value).status_code == 200
    assert annotations(client, run["id"]) == {"team": value}


@pytest.mark.parametrize(
    "key", ["team/owner", "a/b/c", "k" * 255], ids=["one-slash", "two-slashes", "255-chars"]
)
def test_put_and_delete_work_for_keys_with_slashes_and_long_keys(
    client: FlaskClient, auth: Auth, key: str
) -> None:
    run = create_run(client, auth())
    assert put(client, auth(), run["id"], key, "alice").status_code == 200
    assert annotations(client, run["id"]) == {key: "alice"}
    assert delete(client, auth(), run["id"], key).status_code == 204
    assert annotations(client, run["id"]) == {}


def test_percent_encoded_key_is_decoded(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth())
    key = "équipe owner?"
    response = put(client, auth(), run["id"], quote(key, safe=""), "ml")
    assert response.status_code == 200
    assert annotations(client, run["id"]) == {key: "ml"}


def test_put_on_unknown_run_is_404(client: FlaskClient, auth: Auth) -> None:
    assert_error_envelope(put(client, auth(), UNKNOWN_RUN, "team", "ml"), 404)


# --- delete -----------------------------------------------------------------------------


def test_delete_removes_only_that_annotation(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth(), annotations={"team": "ml", "team/owner": "alice"})
    response = delete(client, auth(), run["id"], "team")
    assert response.status_code == 204
    assert response.get_data() == b""
    assert annotations(client, run["id"]) == {"team/owner": "alice"}


def test_delete_of_a_missing_key_is_404(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth(), annotations={"team": "ml"})
    assert_error_envelope(delete(client, auth(), run["id"], "tier"), 404)
    assert annotations(client, run["id"]) == {"team": "ml"}


def test_second_delete_of_the_same_key_is_404(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth(), annotations={"team": "ml"})
    assert delete(client, auth(), run["id"], "team").status_code == 204
    assert_error_envelope(delete(client, auth(), run["id"], "team"), 404)


def test_delete_on_unknown_run_is_404(client: FlaskClient, auth: Auth) -> None:
    assert_error_envelope(delete(client, auth(), UNKNOWN_RUN, "team"), 404)


# --- reserved keys ----------------------------------------------------------------------


def test_put_of_a_system_key_is_400(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth())
    assert_error_envelope(put(client, auth(), run["id"], "system/pipeline_run.name", "x"), 400)
    assert annotations(client, run["id"]) == {}


def test_delete_of_a_system_key_is_400(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth())
    assert_error_envelope(delete(client, auth(), run["id"], "system/owner"), 400)


def test_key_merely_containing_system_is_an_ordinary_key(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth())
    assert put(client, auth(), run["id"], "team/system/x", "v").status_code == 200
    assert annotations(client, run["id"]) == {"team/system/x": "v"}


# --- owner or admin ---------------------------------------------------------------------


def test_another_writer_cannot_put_403(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth("alice"), annotations={"team": "ml"})
    assert_error_envelope(put(client, auth("bob"), run["id"], "team", "infra"), 403)
    assert annotations(client, run["id"]) == {"team": "ml"}


def test_another_writer_cannot_delete_403(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth("alice"), annotations={"team": "ml"})
    assert_error_envelope(delete(client, auth("bob"), run["id"], "team"), 403)
    assert annotations(client, run["id"]) == {"team": "ml"}


def test_admin_may_put_on_someone_elses_run(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth("alice"))
    assert put(client, auth("root", "admin"), run["id"], "team", "ops").status_code == 200
    assert annotations(client, run["id"]) == {"team": "ops"}


def test_admin_may_delete_on_someone_elses_run(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth("alice"), annotations={"team": "ml"})
    assert delete(client, auth("root", "admin"), run["id"], "team").status_code == 204
    assert annotations(client, run["id"]) == {}


def test_only_admin_may_annotate_a_run_without_creator(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth("root", "admin"), created_by=None)
    assert_error_envelope(put(client, auth("alice"), run["id"], "team", "ml"), 403)
    assert put(client, auth("root", "admin"), run["id"], "team", "ml").status_code == 200
