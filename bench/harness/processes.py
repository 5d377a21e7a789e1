"""Child processes of the harness: the flask CLI, and the environment servers start with."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from .errors import HarnessError

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def clean_env(env: Mapping[str, str]) -> dict[str, str]:
    """Our environment minus anything that would make servers share state, plus `env`."""
    merged = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    merged.update(env)
    return merged


def flask_cli(env: Mapping[str, str], *args: str, timeout: float | None = None) -> str:
    """`flask --app runstats_app ARGS` with `env` on top of ours; its stdout."""
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "runstats_app", *args],
        cwd=ROOT,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise HarnessError(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout
