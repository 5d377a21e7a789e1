"""Flask CLI commands: API tokens and demo data."""

from __future__ import annotations

import sys

import click
from flask import Flask
from sqlalchemy import select

from .auth import ROLE_NAMES, Role, create_token, revoke_token
from .demo import DEFAULT_SHAPE, DemoShape, load_demo_data
from .extensions import db
from .models import PipelineRun


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


@click.command("demo-data", help="Load realistic demo runs (README: Demo data at scale).")
@click.option("--runs", "count", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option(
    "--users",
    type=click.IntRange(min=1),
    default=DEFAULT_SHAPE.users,
    show_default=True,
    help="Distinct creators, 1 in 100 of them (1 to 5) service accounts.",
)
@click.option(
    "--pipelines",
    type=click.IntRange(min=1),
    default=DEFAULT_SHAPE.pipelines,
    show_default=True,
    help="Distinct pipeline names.",
)
@click.option(
    "--teams",
    type=click.IntRange(min=1),
    default=DEFAULT_SHAPE.teams,
    show_default=True,
    help="Teams owning the pipelines.",
)
@click.option(
    "--skew",
    type=float,
    default=DEFAULT_SHAPE.skew,
    show_default=True,
    help="Zipf exponent of pipelines' and users' popularity, 0 (uniform) to 10.",
)
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
    with click.progressbar(length=count, label="Loading demo runs") as bar:

        def stage(name: str) -> None:
            bar.label = name
            bar.render_progress()

        load_demo_data(session, count, shape, seed=seed, progress=bar.update, stage=stage)
    click.echo(f"Loaded {count} runs.")
