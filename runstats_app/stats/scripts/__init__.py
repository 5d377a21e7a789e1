"""Lua scripts, one per file, each touching the keys of one stats key's hash slot only."""

from __future__ import annotations

from importlib import resources

import redis
from redis.commands.core import Script


def load(client: redis.Redis, name: str) -> Script:
    """Register `<name>.lua` with the client (sent once, then called by its SHA)."""
    source = resources.files(__package__).joinpath(f"{name}.lua").read_text()
    return client.register_script(source)
