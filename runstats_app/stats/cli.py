"""`flask stats …`: fill, fold and verify the maintained counts."""

from __future__ import annotations

import sys

import click
from flask import Flask
from sqlalchemy import func, select

from ..extensions import db
from ..models import PipelineRun
from .counts.fold import fold_all
from .counts.rebuild import rebuild
from .counts.verify import CountsNotReady, verify


@click.group(help="The maintained counts behind the stats (PostgreSQL).")
def stats() -> None:
    if db.engine.dialect.name != "postgresql":
        raise click.ClickException("Maintained counts need PostgreSQL; SQLite always scans.")


@stats.command(
    "rebuild", help="Fill or recompute the counts online, in batches, while writes go on."
)
@click.option("--batch-runs", type=click.IntRange(min=100), default=50_000, show_default=True)
@click.option("--untrack-key", multiple=True, help="Leave this annotation key out (repeatable).")
@click.option("--track-key", multiple=True, help="Count this annotation key again (repeatable).")
def rebuild_command(
    batch_runs: int, untrack_key: tuple[str, ...], track_key: tuple[str, ...]
) -> None:
    total = db.session().scalar(select(func.count()).select_from(PipelineRun)) or 0
    db.session.remove()
    with click.progressbar(length=total, label="Counting runs") as bar:
        report = rebuild(
            db.maintenance_engine(),
            untrack=untrack_key,
            track=track_key,
            batch_runs=batch_runs,
            progress=bar.update,
        )
    click.echo(f"Counted {report.runs} runs in {report.batches} batches; the counts are ready.")


@stats.command("fold", help="Fold the changes recorded so far into the counts.")
def fold_command() -> None:
    click.echo(f"Folded {fold_all(db.maintenance_engine())} changes.")


@stats.command(
    "verify", help="Compare the counts with the GROUP BY over the runs, in one snapshot."
)
@click.option("--samples", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--seed", type=int, default=None, help="Random seed for a repeatable sample.")
def verify_command(samples: int, seed: int | None) -> None:
    try:
        differences = verify(db.maintenance_engine(), samples, seed)
    except CountsNotReady as exc:
        raise click.ClickException(str(exc)) from None
    for difference in differences:
        click.echo(f"DIFFERENT {difference.filter}")
        click.echo(f"  counts: {difference.counts}\n  scan:   {difference.scan}")
    if differences:
        click.echo(f"{len(differences)} differences in {samples} samples.", err=True)
        sys.exit(1)
    click.echo(f"No difference in {samples} samples.")


def init_app(app: Flask) -> None:
    app.cli.add_command(stats)
