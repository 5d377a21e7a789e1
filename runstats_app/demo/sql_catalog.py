"""The catalog inside PostgreSQL: temporary tables to join and weight bounds to draw with.

A weighted draw is `width_bucket(random(), lowers)`: `lowers` holds where
each item's share of [0, 1) starts, and width_bucket() finds the item by
bisection in C. Creators are numbered by team (people of team 0, then of
team 1, ..., then the service accounts), so one array of lowers draws among
everyone and another among one team's members: team t's members share
[t, t + 0.5), and `t + 0.5 * random()` picks one of them (half-width slots,
so no rounding of the sum can reach the next team's).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from .catalog import Catalog, Member
from .shape import ENVIRONMENTS


def lower_bounds(weights: Sequence[float]) -> list[float]:
    """Where each weight's share of [0, 1) starts."""
    total = sum(weights)
    return [0.0, *(cumulative / total for cumulative in accumulate(weights[:-1]))]


def member_bounds(catalog: Catalog) -> tuple[list[Member], list[float]]:
    """People in creator-number order, and the lowers of each within its team's slot."""
    ordered: list[Member] = []
    lowers: list[float] = []
    for team in range(len(catalog.teams)):
        members = catalog.members(team)
        ordered.extend(members)
        lowers.extend(team + 0.5 * lower for lower in lower_bounds([m.weight for m in members]))
    return ordered, lowers


def create_catalog_tables(session: Session, catalog: Catalog) -> dict[str, Any]:
    """Create `demo_pipelines` and `demo_creators`; return the draws' bind parameters.

    demo_pipelines is keyed by popularity rank, demo_creators by creator
    number; the parameters are the lowers each draw needs, the people's
    count (service accounts are numbered after them) and the environments.
    """
    people, member_lowers = member_bounds(catalog)
    for table in ("demo_pipelines", "demo_creators"):
        session.execute(text(f"DROP TABLE IF EXISTS pg_temp.{table}"))
    session.execute(
        text(
            "CREATE TEMP TABLE demo_pipelines AS"
            " SELECT rank::int, name, team, team_index::int"
            " FROM unnest(CAST(:names AS text[]), CAST(:teams AS text[]),"
            " CAST(:team_indexes AS int[])) WITH ORDINALITY AS p(name, team, team_index, rank)"
        ),
        {
            "names": [pipeline.name for pipeline in catalog.pipelines],
            "teams": [catalog.teams[pipeline.team] for pipeline in catalog.pipelines],
            "team_indexes": [pipeline.team for pipeline in catalog.pipelines],
        },
    )
    session.execute(
        text(
            "CREATE TEMP TABLE demo_creators AS"
            " SELECT number::int, name"
            " FROM unnest(CAST(:names AS text[])) WITH ORDINALITY AS c(name, number)"
        ),
        {"names": [member.name for member in (*people, *catalog.service_accounts)]},
    )
    for table, key in (("demo_pipelines", "rank"), ("demo_creators", "number")):
        session.execute(text(f"ALTER TABLE {table} ADD PRIMARY KEY ({key})"))
        session.execute(text(f"ANALYZE {table}"))
    return {
        "pipeline_lowers": lower_bounds([pipeline.weight for pipeline in catalog.pipelines]),
        "people_lowers": lower_bounds([member.weight for member in people]),
        "member_lowers": member_lowers,
        "service_lowers": lower_bounds([member.weight for member in catalog.service_accounts]),
        "people": len(people),
        "envs": [name for name, _ in ENVIRONMENTS],
        "env_lowers": lower_bounds([weight for _, weight in ENVIRONMENTS]),
    }
