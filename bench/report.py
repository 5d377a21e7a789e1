"""bench/RESULTS.md: the prose findings kept beside it, and the report around the sections."""

from __future__ import annotations

from pathlib import Path

NOTES = Path(__file__).resolve().parent / "notes"


def note(name: str) -> str:
    """bench/notes/NAME.md, verbatim: findings written by people, not computed by the run."""
    return (NOTES / f"{name}.md").read_text()
