"""demo-data looks like a real platform: skewed popularity, teams owning pipelines, unique SHAs.

Both loaders (Python on SQLite, SQL inside PostgreSQL), a fixed seed, the
default shape unless a test says otherwise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import Connection, select

from runstats_app.demo import DEFAULT_SHAPE, DemoShape, load_demo_data
from runstats_app.demo.catalog import build_catalog
from runstats_app.demo.shape import git_sha
from runstats_app.extensions import db
from runstats_app.models import PipelineRun, RunAnnotation

from .support.app import PG_URL, migrated_app
from .support.databases import fresh_database

RUNS = 1500


@dataclass
class Loaded:
    runs: list[tuple[str, str, str | None]]
    annotations: dict[str, dict[str, str]]

    def annotated(self, key: str) -> dict[str, str]:
        return {run: values[key] for run, values in self.annotations.items() if key in values}


def _load(app: Flask, runs: int = RUNS) -> Loaded:
    with app.app_context():
        session = db.session()
        load_demo_data(session, runs, seed=8)
        rows = session.execute(
            select(PipelineRun.id, PipelineRun.name, PipelineRun.created_by)
        ).all()
        annotations: dict[str, dict[str, str]] = {}
        for run_id, key, value in session.execute(
            select(RunAnnotation.run_id, RunAnnotation.key, RunAnnotation.value)
        ):
            annotations.setdefault(run_id, {})[key] = value
    return Loaded([tuple(row) for row in rows], annotations)  # type: ignore[misc]


def test_creators_are_the_shapes_users_and_alice_is_the_most_active(
    app: Flask, connection: Connection
) -> None:
    catalog = build_catalog(DEFAULT_SHAPE)
    users = {m.name for m in (*catalog.people, *catalog.service_accounts)}
    creators = Counter(creator for _, _, creator in _load(app).runs if creator is not None)
    assert set(creators) <= users
    assert len(creators) > DEFAULT_SHAPE.users / 2
    assert creators.most_common(1)[0][0] == "alice"


def test_about_one_run_in_twenty_has_no_creator(app: Flask, connection: Connection) -> None:
    creators = [creator for _, _, creator in _load(app).runs]
    assert 0.03 < creators.count(None) / RUNS < 0.07


def test_pipeline_popularity_is_skewed(app: Flask, connection: Connection) -> None:
    names = Counter(name for _, name, _ in _load(app).runs)
    assert set(names) <= {p.name for p in build_catalog(DEFAULT_SHAPE).pipelines}
    assert 50 < len(names) <= DEFAULT_SHAPE.pipelines
    top, *_ = names.most_common(1)
    assert top[1] > 20 * median(names.values())


def test_the_team_annotation_is_the_team_owning_the_pipeline(
    app: Flask, connection: Connection
) -> None:
    catalog = build_catalog(DEFAULT_SHAPE)
    owner = {p.name: catalog.teams[p.team] for p in catalog.pipelines}
    loaded = _load(app)
    teams = loaded.annotated("team")
    assert {run_id: owner[name] for run_id, name, _ in loaded.runs} == teams
    assert set(teams.values()) == set(catalog.teams)


def test_people_mostly_run_their_own_teams_pipelines(app: Flask, connection: Connection) -> None:
    catalog = build_catalog(DEFAULT_SHAPE)
    team_of = {p.name: p.team for p in catalog.pipelines}
    member_of = {person.name: person.team for person in catalog.people}
    by_people = [(n, c) for _, n, c in _load(app).runs if c in member_of]
    own = sum(member_of[creator] == team_of[name] for name, creator in by_people)
    assert 0.85 < own / len(by_people) < 0.98


def test_service_accounts_run_many_teams_pipelines(app: Flask, connection: Connection) -> None:
    catalog = build_catalog(DEFAULT_SHAPE)
    service = {account.name for account in catalog.service_accounts}
    team_of = {p.name: p.team for p in catalog.pipelines}
    runs = [(name, creator) for _, name, creator in _load(app).runs if creator in service]
    assert 0.10 < len(runs) / RUNS < 0.20
    assert len({team_of[name] for name, _ in runs}) == DEFAULT_SHAPE.teams


def test_git_sha_is_unique_and_on_about_a_third_of_runs(
    app: Flask, connection: Connection
) -> None:
    shas = _load(app).annotated("git_sha")
    assert 0.29 < len(shas) / RUNS < 0.38
    assert shas == {run_id: git_sha(run_id) for run_id in shas}
    assert len(set(shas.values())) == len(shas)


def test_train_is_in_a_fifth_to_a_third_of_runs_names(app: Flask, connection: Connection) -> None:
    names = [name for _, name, _ in _load(app).runs]
    assert 0.20 < sum("train" in name for name in names) / RUNS < 0.35


def test_env_is_mostly_prod(app: Flask, connection: Connection) -> None:
    envs = Counter(_load(app).annotated("env").values())
    assert set(envs) == {"prod", "staging", "dev"}
    assert 0.52 < envs["prod"] / RUNS < 0.68
    assert envs["prod"] > envs["dev"] > envs["staging"]


@pytest.fixture
def own_app(backend: str, tmp_path: Path) -> Iterator[Flask]:
    """An app on a database of its own: the command commits, and its rebuild locks the
    counts' deltas, which the `connection` fixture's open transaction would hold."""
    with fresh_database(backend, tmp_path, PG_URL) as url, migrated_app(url) as app:
        yield app


def _cli(app: Flask, *args: str) -> Result:
    with app.app_context():
        return app.test_cli_runner().invoke(args=["demo-data", *args])


def test_the_cli_loads_the_sizes_it_is_given(own_app: Flask) -> None:
    result = _cli(own_app, "--runs", "400", "--users", "12", "--pipelines", "30", "--teams", "3")
    assert result.exit_code == 0, result.output
    catalog = build_catalog(DemoShape(users=12, pipelines=30, teams=3))
    with own_app.app_context():
        session = db.session()
        names = set(session.scalars(select(PipelineRun.name).distinct()))
        teams = set(
            session.scalars(select(RunAnnotation.value).where(RunAnnotation.key == "team"))
        )
    assert names <= {p.name for p in catalog.pipelines}
    assert len(names) > 20
    assert teams == set(catalog.teams) == {"ml-platform", "search", "ads"}


def test_the_cli_with_no_skew_spreads_runs_evenly(own_app: Flask) -> None:
    result = _cli(own_app, "--runs", "600", "--pipelines", "30", "--skew", "0", "--seed", "2")
    assert result.exit_code == 0, result.output
    with own_app.app_context():
        counts = Counter(db.session().scalars(select(PipelineRun.name)))
    assert len(counts) == 30
    assert max(counts.values()) < 2.5 * median(counts.values())


def test_the_cli_refuses_more_teams_than_people(own_app: Flask) -> None:
    result = _cli(own_app, "--runs", "10", "--users", "5", "--teams", "8")
    assert result.exit_code == 2
    assert "every team needs a member" in result.output
