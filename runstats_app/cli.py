"""Flask CLI commands: API tokens and demo data."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from flask import Flask
from sqlalchemy import select

from .auth import ROLE_NAMES, Role, create_token, revoke_token
from .demo import DEFAULT_SHAPE, DemoShape, load_demo_data
from .demo.shape import GIT_SHA_KEY
from .extensions import db
from .models import PipelineRun
from .stats.counts.rebuild import rebuild, stop_counting

F = TypeVar("F", bound=Callable[..., Any])


def init_app(app: Flask) -> None:
    app.cli.add_command(tokens)
    app.cli.add_command(demo_data)


@click.group(help="Create and revoke API tokens.")
def tokens() -> None:
    pass


@tokens.command("create", help="Create a token; it is printed once, alone on the last line.")
@click.option("--user", required=True, help="User name the token acts as.")
@click.option("--role", required=True, type=click.Choice(ROLE_NAMES), help="Granted role.")
def create_token_command(user: str, role: str) -> None:
    user = user.strip()
    if not 1 <= len(user) <= 255:
        raise click.BadParameter("must be 1 to 255 characters", param_hint="--user")
    session = db.session()
    token = create_token(session, user, Role[role])
    session.commit()
    click.echo(f"Created a {role} token for {user}. It is shown only now:", err=True)
    click.echo(token)


@tokens.command("revoke", help="Revoke a token (read from the argument or stdin).")
@click.argument("token", required=False)
def revoke_token_command(token: str | None) -> None:
    secret = (token or sys.stdin.readline()).strip()
    session = db.session()
    if not revoke_token(session, secret):
        raise click.ClickException("No such active token.")
    session.commit()
    click.echo("Token revoked.")


def _shape_option(name: str, kind: Any, help_text: str) -> Callable[[F], F]:
    """An option of the demo platform's sizes, defaulting to DemoShape's."""
    return click.option(
        f"--{name}",
        type=kind,
        default=getattr(DEFAULT_SHAPE, name),
        show_default=True,
        help=help_text,
    )


@click.command("demo-data", help="Load realistic demo runs (README: Demo data at scale).")
@click.option("--runs", "count", type=click.IntRange(min=1), default=1000, show_default=True)
@_shape_option(
    "users", click.IntRange(min=1), "Distinct creators, 1 in 100 (1 to 5) service accounts."
)
@_shape_option("pipelines", click.IntRange(min=1), "Distinct pipeline names.")
@_shape_option("teams", click.IntRange(min=1), "Teams owning the pipelines.")
@_shape_option("skew", float, "Zipf exponent of pipelines' and users' popularity, 0 to 10.")
@click.option("--seed", type=int, default=None, help="Random seed for a repeatable data set.")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has runs.")
def demo_data(
    count: int,
    users: int,
    pipelines: int,
    teams: int,
    skew: float,
    seed: int | None,
    if_empty: bool,
) -> None:
    try:
        shape = DemoShape(users=users, pipelines=pipelines, teams=teams, skew=skew)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    session = db.session()
    if if_empty and session.scalar(select(PipelineRun.id).limit(1)) is not None:
        click.echo("The database already has runs; no demo data loaded.")
        return
    counted = db.engine.dialect.name == "postgresql"
    if counted:
        stop_counting(db.maintenance_engine())
    with click.progressbar(length=count, label="Loading demo runs") as bar:

        def stage(name: str) -> None:
            bar.label = name
            bar.render_progress()

        load_demo_data(session, count, shape, seed=seed, progress=bar.update, stage=stage)
    click.echo(f"Loaded {count} runs.")
    if counted:
        db.session.remove()
        report = rebuild(db.maintenance_engine(), untrack=[GIT_SHA_KEY])
        click.echo(
            f"Counted {report.runs} runs for the stats ({GIT_SHA_KEY} left out: "
            "its values are unique per run)."
        )
