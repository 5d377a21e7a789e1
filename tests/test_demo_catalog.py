"""The demo platform's catalog: names, who belongs where, and the weights runs are drawn by."""

from __future__ import annotations

import re

import pytest

from runstats_app.demo.catalog import KIND_NAMES, apportion, build_catalog, person_name
from runstats_app.demo.shape import DemoShape, zipf_weights
from runstats_app.demo.sql_catalog import lower_bounds, member_bounds

BENCH = DemoShape(users=500, pipelines=5000, teams=30)
SHAPES = [DemoShape(), BENCH, DemoShape(users=12, pipelines=30, teams=3, skew=0.5)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_every_name_is_unique(shape: DemoShape) -> None:
    catalog = build_catalog(shape)
    for names in (
        catalog.teams,
        [p.name for p in catalog.pipelines],
        [m.name for m in (*catalog.people, *catalog.service_accounts)],
    ):
        assert len(set(names)) == len(names)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_the_sizes_are_the_shapes(shape: DemoShape) -> None:
    catalog = build_catalog(shape)
    assert len(catalog.teams) == shape.teams
    assert len(catalog.pipelines) == shape.pipelines
    assert len(catalog.people) + len(catalog.service_accounts) == shape.users


def test_one_user_in_a_hundred_is_a_service_account_up_to_five() -> None:
    assert [DemoShape(users=n, teams=1).service_accounts for n in (2, 100, 101, 500, 9000)] == [
        1,
        1,
        2,
        5,
        5,
    ]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_every_team_has_members_and_owns_pipelines(shape: DemoShape) -> None:
    catalog = build_catalog(shape)
    for team in range(shape.teams):
        assert catalog.members(team)
        assert any(p.team == team for p in catalog.pipelines)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_each_team_owns_the_share_of_runs_its_members_activity_calls_for(
    shape: DemoShape,
) -> None:
    catalog = build_catalog(shape)
    for team in range(shape.teams):
        owned = sum(p.weight for p in catalog.pipelines if p.team == team)
        activity = sum(m.weight for m in catalog.members(team))
        assert owned == pytest.approx(activity, abs=0.01)


def test_alice_is_the_most_active_then_bob_and_carol() -> None:
    people = build_catalog(BENCH).people
    assert [p.name for p in people[:3]] == ["alice", "bob", "carol"]
    assert people[0].weight > 2 * people[1].weight


def test_the_most_popular_pipeline_is_ml_platforms() -> None:
    catalog = build_catalog(BENCH)
    assert catalog.teams[catalog.pipelines[0].team] == "ml-platform"
    assert catalog.people[0].team == catalog.pipelines[0].team


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_train_names_carry_about_27_percent_of_the_weight(shape: DemoShape) -> None:
    pipelines = build_catalog(shape).pipelines
    assert 0.24 < sum(p.weight for p in pipelines if "train" in p.name) < 0.30


def test_pipeline_names_are_team_kind_and_word() -> None:
    catalog = build_catalog(BENCH)
    for pipeline in catalog.pipelines:
        words, always_numbered = KIND_NAMES[pipeline.kind]
        team = re.escape(catalog.teams[pipeline.team])
        word = "|".join(map(re.escape, words))
        number = r"-\d+" if always_numbered else r"(-\d+)?"
        assert re.fullmatch(rf"{team}-{pipeline.kind}-({word}){number}", pipeline.name)


def test_only_train_pipelines_say_train() -> None:
    pipelines = build_catalog(BENCH).pipelines
    assert all(("train" in p.name) == (p.kind == "train") for p in pipelines)


def test_people_are_first_names_then_first_dot_last() -> None:
    assert [person_name(i) for i in (0, 1, 49, 50, 51, 1049, 1050)] == [
        "alice",
        "bob",
        "zane",
        "alice.smith",
        "bob.smith",
        "zane.moreau",
        "alice.smith2",
    ]


def test_zipf_weights_fall_as_one_over_the_rank() -> None:
    weights = zipf_weights(4, 1.0)
    assert sum(weights) == pytest.approx(1)
    assert [weights[0] / w for w in weights] == pytest.approx([1, 2, 3, 4])
    assert zipf_weights(3, 0.0) == pytest.approx([1 / 3] * 3)


def test_apportion_gives_every_group_one_item_then_tracks_the_targets() -> None:
    weights = [0.4, 0.2, 0.1, 0.1, 0.1, 0.1]
    owners = apportion(weights, [0.5, 0.3, 0.2])
    assert owners[:3] == [0, 1, 2]
    held = [0.0, 0.0, 0.0]
    for weight, owner in zip(weights, owners, strict=True):
        held[owner] += weight
    assert held == pytest.approx([0.5, 0.3, 0.2])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"users": 5, "teams": 8}, "every team needs a member"),
        ({"pipelines": 3, "teams": 4}, "every team owns a pipeline"),
        ({"teams": 0}, "teams must be at least 1"),
        ({"skew": -1}, "skew must be between"),
    ],
)
def test_impossible_shapes_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DemoShape(**kwargs)  # type: ignore[arg-type]


def test_lower_bounds_start_each_share() -> None:
    assert lower_bounds([2, 1, 1]) == pytest.approx([0, 0.5, 0.75])


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_member_lowers_keep_each_team_in_the_first_half_of_its_slot(shape: DemoShape) -> None:
    catalog = build_catalog(shape)
    people, lowers = member_bounds(catalog)
    assert sorted(lowers) == lowers
    for person, lower in zip(people, lowers, strict=True):
        assert person.team <= lower < person.team + 0.5  # type: ignore[operator]
