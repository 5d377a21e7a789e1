"""docker-compose.yml describes a stack that can start (no Docker engine runs here)."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from runstats_app.config import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


HA_SERVICES = {
    "postgres-replica",
    "redis-replica",
    "sentinel-1",
    "sentinel-2",
    "sentinel-3",
    "app-ha-1",
    "app-ha-2",
}
HA_APPS = ["app-ha-1", "app-ha-2"]
SENTINELS = ["sentinel-1", "sentinel-2", "sentinel-3"]


def _profiled(compose: dict[str, Any], profile: str | None) -> set[str]:
    return {
        name
        for name, service in compose["services"].items()
        if (profile in service.get("profiles", []))
        or (profile is None and "profiles" not in service)
    }


def test_stack_has_postgres_redis_migrate_and_app(compose: dict[str, Any]) -> None:
    assert _profiled(compose, None) == {"postgres", "redis", "migrate", "app"}


def test_the_ha_profile_adds_replicas_sentinels_and_two_app_hosts(compose: dict[str, Any]) -> None:
    assert _profiled(compose, "ha") == HA_SERVICES
    assert set(compose["services"]) == _profiled(compose, None) | HA_SERVICES


def test_backing_services_have_healthchecks(compose: dict[str, Any]) -> None:
    for name in ("postgres", "redis", "app", *(HA_SERVICES - {"app-ha-2"})):
        assert compose["services"][name]["healthcheck"]["test"]


def test_migrate_is_a_one_shot_alembic_upgrade_after_postgres_is_healthy(
    compose: dict[str, Any],
) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["command"][-2:] == ["db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_app_waits_for_migrations_and_healthy_services(compose: dict[str, Any]) -> None:
    depends = compose["services"]["app"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"


def test_app_runs_gunicorn_from_the_image(compose: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]' in dockerfile
    assert compose["services"]["app"]["build"] == "."


def _dockerfile_instructions() -> list[tuple[str, str]]:
    lines = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    return [
        (line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1])
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_app_serves_with_the_settings_of_gunicorn_conf_py(compose: dict[str, Any]) -> None:
    """Its request-head limits above all: nothing replaces the file or overrides it."""
    app = compose["services"]["app"]
    assert "command" not in app and "entrypoint" not in app
    assert "GUNICORN_CMD_ARGS" not in app["environment"]
    instructions = _dockerfile_instructions()
    assert not any(name == "ENTRYPOINT" for name, _ in instructions)
    assert not any("GUNICORN_CMD_ARGS" in argument for _, argument in instructions)
    copied = [argument.split() for name, argument in instructions if name == "COPY"]
    assert any("gunicorn.conf.py" in sources[:-1] and sources[-1] == "./" for sources in copied)


def _variables_the_app_reads() -> set[str]:
    """Every RUNSTATS_* setting, but the test deployments' hooks (RUNSTATS_TEST_*)."""
    names = {f"RUNSTATS_{f.name.upper()}" for f in fields(Settings) if f.name != "extra"}
    source = "\n".join(p.read_text() for p in (ROOT / "runstats_app").rglob("*.py"))
    names |= set(re.findall(r"RUNSTATS_[A-Z_]+", source)) - {"RUNSTATS_REDIS_CLIENT"}
    return {n for n in names if not n.endswith("_") and not n.startswith("RUNSTATS_TEST_")}


@pytest.mark.parametrize("service", ["migrate", "app", *HA_APPS])
def test_every_runstats_variable_is_configured(compose: dict[str, Any], service: str) -> None:
    environment = compose["services"][service]["environment"]
    assert _variables_the_app_reads() <= set(environment)


def test_database_and_redis_urls_point_at_the_compose_services(compose: dict[str, Any]) -> None:
    environment = compose["services"]["app"]["environment"]
    assert "@postgres:5432/" in environment["RUNSTATS_DATABASE_URL"]
    assert environment["RUNSTATS_REDIS_URL"].startswith("redis://redis:6379")


def _settings_of(environment: dict[str, Any]) -> Settings:
    """The Settings an app service starts with, `${NAME:-default}` taking its default."""
    resolved = {
        name: re.sub(r"\$\{[A-Z_]+:?-([^}]*)\}", r"\1", str(value))
        for name, value in environment.items()
    }
    return Settings.from_env(resolved)


@pytest.mark.parametrize("service", ["app", *HA_APPS])
def test_every_app_service_starts_with_settings_the_app_accepts(
    compose: dict[str, Any], service: str
) -> None:
    _settings_of(compose["services"][service]["environment"])


def _sentinel_lines(compose: dict[str, Any]) -> list[str]:
    return [line.split() for line in compose["configs"]["sentinel"]["content"].splitlines()]


@pytest.mark.parametrize("app", HA_APPS)
def test_ha_apps_reach_redis_through_every_sentinel_and_the_monitored_service(
    compose: dict[str, Any], app: str
) -> None:
    settings = _settings_of(compose["services"][app]["environment"])
    assert settings.redis_url is None
    assert [host for host, _ in settings.sentinel_addresses] == SENTINELS
    assert {port for _, port in settings.sentinel_addresses} == {26379}
    monitor = next(line for line in _sentinel_lines(compose) if line[1] == "monitor")
    assert monitor[2:] == [settings.redis_sentinel_service, "redis", "6379", "2"]
    depends = compose["services"][app]["depends_on"]
    assert all(depends[s]["condition"] == "service_healthy" for s in SENTINELS)


@pytest.mark.parametrize("app", HA_APPS)
def test_ha_apps_read_from_the_postgres_replica(compose: dict[str, Any], app: str) -> None:
    settings = _settings_of(compose["services"][app]["environment"])
    assert [u.split("@")[1].split("/")[0] for u in settings.replica_urls] == [
        "postgres-replica:5432"
    ]


def test_sentinels_fail_over_in_seconds_not_the_defaults(compose: dict[str, Any]) -> None:
    timings = {line[1]: int(line[3]) for line in _sentinel_lines(compose) if len(line) == 4}
    assert timings["down-after-milliseconds"] <= 10_000
    assert timings["failover-timeout"] <= 60_000
    for name in SENTINELS:
        sentinel = compose["services"][name]
        assert "redis-sentinel" in sentinel["command"][-1]
        assert sentinel["configs"][0]["source"] == "sentinel"


def test_the_replicas_copy_the_primaries(compose: dict[str, Any]) -> None:
    redis_replica = compose["services"]["redis-replica"]["command"]
    assert redis_replica[-3:] == ["--replicaof", "redis", "6379"]
    entrypoint = " ".join(compose["services"]["postgres-replica"]["entrypoint"])
    assert "pg_basebackup -h postgres" in entrypoint and " -R " in entrypoint
    replication = compose["configs"]["pg-replication"]["content"]
    assert "host replication all all" in replication
    mounts = compose["services"]["postgres"]["configs"]
    assert mounts[0]["target"].startswith("/docker-entrypoint-initdb.d/")
