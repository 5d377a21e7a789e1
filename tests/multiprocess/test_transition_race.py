"""Concurrent compare-and-set transitions through several gunicorn workers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from ..support.servers import LiveApp

RACERS = 16


def _race(service: LiveApp, run_id: str, body: dict[str, str]) -> list[int]:
    barrier = threading.Barrier(RACERS)
    url = f"{service.url}/api/pipeline_runs/{run_id}/transitions"

    def attempt(_: int) -> int:
        with requests.Session() as session:
            barrier.wait()
            return session.post(
                url, json=body, headers=service.headers("alice"), timeout=30
            ).status_code

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(attempt, range(RACERS)))


def _running_run(service: LiveApp) -> str:
    return str(service.create_run("alice", name="race", status="RUNNING")["id"])


def test_sixteen_compare_and_set_transitions_from_running_have_one_winner(
    live_service: LiveApp,
) -> None:
    run_id = _running_run(live_service)
    codes = _race(live_service, run_id, {"status": "SUCCEEDED", "expected_status": "RUNNING"})
    assert sorted(codes) == [200] + [409] * (RACERS - 1)
    history = requests.get(f"{live_service.url}/api/pipeline_runs/{run_id}/history", timeout=10)
    assert [(h["from_status"], h["to_status"]) for h in history.json()] == [
        ("RUNNING", "SUCCEEDED")
    ]


def test_racing_different_targets_records_exactly_the_answer_that_won(
    live_service: LiveApp,
) -> None:
    run_id = _running_run(live_service)
    barrier = threading.Barrier(RACERS)
    url = f"{live_service.url}/api/pipeline_runs/{run_id}/transitions"
    targets = ["SUCCEEDED", "FAILED", "SYSTEM_ERROR", "CANCELLED"] * (RACERS // 4)

    def attempt(target: str) -> requests.Response:
        with requests.Session() as session:
            barrier.wait()
            return session.post(
                url, json={"status": target}, headers=live_service.headers("alice"), timeout=30
            )

    with ThreadPoolExecutor(RACERS) as pool:
        responses = list(pool.map(attempt, targets))
    winners = [r.json()["status"] for r in responses if r.status_code == 200]
    assert len(winners) == 1
    assert all(r.status_code == 409 for r in responses if r.status_code != 200)
    history = requests.get(f"{live_service.url}/api/pipeline_runs/{run_id}/history", timeout=10)
    assert [(h["from_status"], h["to_status"]) for h in history.json()] == [
        ("RUNNING", winners[0])
    ]
