"""Fixtures of the API tests: the administrator's headers, a tag for a test's own runs."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from ..support.api import ADMIN


@pytest.fixture
def admin(auth: Callable[..., dict[str, str]]) -> dict[str, str]:
    return auth(*ADMIN)


@pytest.fixture
def tag() -> str:
    """A value of its own for the test's runs (see tests/support/stats.py SUITE)."""
    return uuid.uuid4().hex
