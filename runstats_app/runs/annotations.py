"""The rules of a run's annotations, for the schemas and the service alike."""

from __future__ import annotations

from ..filters.nodes import SYSTEM_PREFIX
from ..text import label_error

MAX_ANNOTATIONS_PER_RUN = 100
MAX_KEY_LENGTH = 255
MAX_VALUE_LENGTH = 255
RESERVED_PREFIX = SYSTEM_PREFIX
RESERVED_MESSAGE = f"Annotation keys beginning with {RESERVED_PREFIX!r} are reserved."
LENGTH_MESSAGE = f"Annotation keys are 1 to {MAX_KEY_LENGTH} characters."


def annotation_key_problem(key: str) -> str | None:
    """What is wrong with an annotation key, or None: reserved, bad text, bad length."""
    if key.startswith(RESERVED_PREFIX):
        return RESERVED_MESSAGE
    broken = label_error(key)
    if broken:
        return f"Annotation key: {broken}"
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        return LENGTH_MESSAGE
    return None
