def test_create_then_get_returns_the_same_run(client, auth):
    created = client.post("/api/pipeline_runs/", json={"name": "train"}, headers=auth())
    assert created.status_code == 201
    fetched = client.get(f"/api/pipeline_runs/{created.json['id']}")
    assert fetched.status_code == 200
    assert fetched.json == created.json


def test_each_test_starts_with_no_runs(client):
    assert client.get("/api/pipeline_runs/").json["pipeline_runs"] == []
