from ..support.api import RUNS, create_run


def test_create_then_get_returns_the_same_run(client, auth):
    created = create_run(client, auth())
    fetched = client.get(f"{RUNS}{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json == created


def test_each_test_starts_with_no_runs(client):
    assert client.get(RUNS).json["pipeline_runs"] == []
