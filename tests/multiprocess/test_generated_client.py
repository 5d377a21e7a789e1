"""A client generated from the served OpenAPI document works against gunicorn.

openapi-python-client builds a package from `/api/openapi.json` into a temporary
directory (never committed); each test drives one kind of call through it. The
filter is built with the generated `FilterQuery` models and sent as its JSON
text, as the document says (`x-contentSchema`).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from ..support.servers import BIN, LiveApp

pytestmark = pytest.mark.multiprocess

TAGGED_RUNS = 5
PAGE_SIZE = 2


@dataclass
class GeneratedClient:
    """The generated package, imported under a name of its own, and how it was made."""

    package: str
    output: str
    base_url: str
    writer_token: str

    def module(self, name: str) -> Any:
        return importlib.import_module(f"{self.package}.{name}")

    def reader(self) -> Any:
        return self.module("client").Client(base_url=self.base_url)

    def writer(self) -> Any:
        return self.module("client").AuthenticatedClient(
            base_url=self.base_url, token=self.writer_token
        )


def _import_package(directory: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        name, directory / "__init__.py", submodule_search_locations=[str(directory)]
    )
    assert spec and spec.loader
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    spec.loader.exec_module(package)
    return package


@pytest.fixture(scope="module")
def generated(
    live_service: LiveApp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GeneratedClient]:
    directory = tmp_path_factory.mktemp("client")
    document = directory / "openapi.json"
    document.write_bytes(requests.get(f"{live_service.url}/api/openapi.json", timeout=10).content)
    config = directory / "generator.yaml"
    config.write_text("post_hooks: []\n")
    output = directory / "runstats_client"
    result = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--output-path",
            str(output),
            "--meta",
            "none",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    package = f"runstats_client_{directory.name}"
    _import_package(output, package)
    yield GeneratedClient(
        package, result.stdout + result.stderr, live_service.url, live_service.tokens["alice"]
    )
    for name in [name for name in sys.modules if name.split(".")[0] == package]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def tag(live_service: LiveApp) -> str:
    """A fresh annotation value carried by TAGGED_RUNS new QUEUED runs, and by no other run."""
    value = uuid.uuid4().hex
    for index in range(TAGGED_RUNS):
        created = requests.post(
            f"{live_service.url}/api/pipeline_runs/",
            json={"name": f"generated-{index}", "annotations": {"suite": value}},
            headers=live_service.headers("alice"),
            timeout=10,
        )
        assert created.status_code == 201, created.text
    return value


def _suite_filter(generated: GeneratedClient, tag: str) -> str:
    models = generated.module("models")
    query = models.FilterQuery(
        and_=[
            models.FilterPredicate(
                value_equals=models.FilterPredicateValueEquals(key="suite", value=tag)
            )
        ]
    )
    return json.dumps(query.to_dict())


def test_the_served_document_generates_a_client_without_warnings(
    generated: GeneratedClient,
) -> None:
    assert "warning" not in generated.output.lower(), generated.output


def test_a_filtered_list_pages_on_with_the_next_page_token(
    generated: GeneratedClient, tag: str
) -> None:
    list_runs = generated.module("api.pipeline_runs.get_api_pipeline_runs")
    query = _suite_filter(generated, tag)
    first = list_runs.sync(client=generated.reader(), filter_query=query, page_size=PAGE_SIZE)
    second = list_runs.sync(
        client=generated.reader(),
        filter_query=query,
        page_size=PAGE_SIZE,
        page_token=first.next_page_token,
    )
    pages = [[run.id for run in page.pipeline_runs] for page in (first, second)]
    assert [len(ids) for ids in pages] == [PAGE_SIZE, PAGE_SIZE]
    assert not set(pages[0]) & set(pages[1])
    assert {run.annotations["suite"] for run in first.pipeline_runs + second.pipeline_runs} == {
        tag
    }
    assert second.next_page_token


def test_filtered_stats_count_only_the_matching_runs(generated: GeneratedClient, tag: str) -> None:
    stats = generated.module("api.stats.get_api_pipeline_runs_stats")
    answer = stats.sync(client=generated.reader(), filter_query=_suite_filter(generated, tag))
    assert (answer.total_runs, answer.counts_by_status.queued) == (TAGGED_RUNS, TAGGED_RUNS)


@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_filtered_history_counts_the_matching_runs_in_its_buckets(
    generated: GeneratedClient, tag: str, bucket: str
) -> None:
    history = generated.module("api.stats.get_api_pipeline_runs_stats_history")
    bucket_enum = generated.module("models").GetApiPipelineRunsStatsHistoryBucket
    answer = history.sync(
        client=generated.reader(),
        filter_query=_suite_filter(generated, tag),
        bucket=bucket_enum(bucket),
    )
    assert answer.bucket == bucket
    assert sum(counts.total_runs for counts in answer.buckets) == TAGGED_RUNS


def test_a_writer_creates_a_run_and_transitions_it(generated: GeneratedClient) -> None:
    models = generated.module("models")
    create = generated.module("api.pipeline_runs.post_api_pipeline_runs")
    transition = generated.module("api.pipeline_runs.post_api_pipeline_runs_run_id_transitions")
    created = create.sync_detailed(
        client=generated.writer(), body=models.RunCreate(name="generated-write")
    )
    assert created.status_code == 201
    moved = transition.sync(
        created.parsed.id,
        client=generated.writer(),
        body=models.Transition(status=models.TransitionStatus.PENDING),
    )
    assert (moved.id, moved.status) == (created.parsed.id, models.RunStatus.PENDING)


def test_a_conflict_is_parsed_as_the_error_envelope(generated: GeneratedClient) -> None:
    models = generated.module("models")
    create = generated.module("api.pipeline_runs.post_api_pipeline_runs")
    transition = generated.module("api.pipeline_runs.post_api_pipeline_runs_run_id_transitions")
    run = create.sync(client=generated.writer(), body=models.RunCreate(name="generated-conflict"))
    answer = transition.sync_detailed(
        run.id,
        client=generated.writer(),
        body=models.Transition(
            status=models.TransitionStatus.RUNNING,
            expected_status=models.TransitionExpectedStatus.PENDING,
        ),
    )
    assert answer.status_code == 409
    assert isinstance(answer.parsed, models.Error)
    assert (answer.parsed.code, answer.parsed.errors["current_status"]) == (409, "QUEUED")
