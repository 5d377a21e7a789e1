"""Numbers, tables and collapsed blocks as bench/RESULTS.md shows them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

X = "\N{MULTIPLICATION SIGN}"
DASH = "\N{EN DASH}"


def ms(seconds: float) -> str:
    value = seconds * 1000
    if value >= 100:
        return f"{value:,.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs"


def maybe_us(seconds: float | None) -> str:
    """`us`, or a dash for what was not measured."""
    return DASH if seconds is None else us(seconds)


def times(value: float) -> str:
    return f"{value:.2f}{X}" if value < 10 else f"{value:,.1f}{X}"


def per_second(value: float) -> str:
    return f"{value:,.0f}/s"


def mib(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)


def details(summary: str, body: str, language: str = "text") -> str:
    return f"<details><summary>{summary}</summary>\n\n```{language}\n{body}\n```\n\n</details>"
