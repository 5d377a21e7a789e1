"""/metrics under gunicorn: samples from every worker add up."""

from __future__ import annotations

import re

import requests

from ..support.servers import LiveApp


def _sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


def _metrics(service: LiveApp) -> str:
    response = requests.get(f"{service.url}/metrics", timeout=10)
    assert response.status_code == 200
    return response.text


def test_transition_histogram_counts_every_transition_made_through_any_worker(
    live_service: LiveApp,
) -> None:
    before = _metrics(live_service)
    runs = [live_service.create_run("alice", name="metrics")["id"] for _ in range(12)]
    for run_id in runs:
        for target in ("RUNNING", "SUCCEEDED"):
            with requests.Session() as http:
                answer = http.post(
                    f"{live_service.url}/api/pipeline_runs/{run_id}/transitions",
                    json={"status": target},
                    headers=live_service.headers("alice"),
                    timeout=10,
                )
                assert answer.status_code == 200
    after = _metrics(live_service)
    name = "runstats_status_transition_seconds_count"
    for pair in (("QUEUED", "RUNNING"), ("RUNNING", "SUCCEEDED")):
        labels = {"from_status": pair[0], "to_status": pair[1]}
        assert _sample(after, name, **labels) - _sample(before, name, **labels) == len(runs)


def test_stats_cache_counters_add_up_across_workers(live_service: LiveApp) -> None:
    before = _metrics(live_service)
    requests_made = 40
    for index in range(requests_made):
        with requests.Session() as http:
            answer = http.get(
                f"{live_service.url}/api/pipeline_runs/stats",
                params={"status": ["RUNNING", "QUEUED"], "current_user": f"u{index % 3}"},
                timeout=10,
            )
            assert answer.status_code == 200
    after = _metrics(live_service)
    name = "runstats_stats_cache_requests_total"
    answered = sum(
        _sample(after, name, result=r) - _sample(before, name, result=r)
        for r in ("hit", "miss", "stale", "bypass")
    )
    assert answered == requests_made
    latency = "runstats_http_request_seconds_count"
    route = {"route": "/api/pipeline_runs/stats", "status": "200"}
    assert _sample(after, latency, **route) - _sample(before, latency, **route) == requests_made
