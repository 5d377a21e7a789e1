"""Lua scripts, one per file; all the keys one call touches share a hash slot."""

from __future__ import annotations

from importlib import resources

from redis.commands.core import Script

from ...redis_client import RedisClient


def load(client: RedisClient, name: str) -> Script:
    """Register `<name>.lua` with the client (sent once, then called by its SHA); the source
    as bytes, so that registering needs no connection (a Cluster client is built lazily)."""
    source = resources.files(__package__).joinpath(f"{name}.lua").read_bytes()
    return client.register_script(source)
