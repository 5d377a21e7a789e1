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


def test_stack_has_postgres_redis_migrate_and_app(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "redis", "migrate", "app"}


def test_backing_services_have_healthchecks(compose: dict[str, Any]) -> None:
    for name in ("postgres", "redis", "app"):
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


@pytest.mark.parametrize("service", ["migrate", "app"])
def test_every_runstats_variable_is_configured(compose: dict[str, Any], service: str) -> None:
    environment = compose["services"][service]["environment"]
    assert _variables_the_app_reads() <= set(environment)


def test_database_and_redis_urls_point_at_the_compose_services(compose: dict[str, Any]) -> None:
    environment = compose["services"]["app"]["environment"]
    assert "@postgres:5432/" in environment["RUNSTATS_DATABASE_URL"]
    assert environment["RUNSTATS_REDIS_URL"].startswith("redis://redis:6379")
