"""Which text the service accepts: one policy for every string a client sends.

Labels (run names, user names, annotation keys, filter keys) are shown in
lists, panels and logs, so they hold no control characters at all (Unicode
category Cc: U+0000-U+001F, U+007F-U+009F). Values (annotation values and the
filter values compared with them) may also hold tab, line feed and carriage
return. No text may hold an unpaired surrogate (a JSON escape such as
\\ud800): no database column can store or compare one. Breaking the policy is
a 400 saying which rule, never a driver error surfacing as a 500.
"""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma

# Anchored, and written so that the OpenAPI `pattern` (ECMA 262) means the same.
LABEL_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
VALUE_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"

LABEL_RULE = "Must not contain control characters (U+0000-U+001F, U+007F-U+009F)."
VALUE_RULE = "Must not contain control characters other than tab, line feed and carriage return."
SURROGATE_RULE = "Must not contain unpaired surrogates (not valid Unicode)."


def is_storable_text(value: str) -> bool:
    """False for text no database column can hold or compare: a NUL or an unpaired surrogate."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _TextRule(ma.validate.Validator):
    """A marshmallow validator whose `regex` apispec documents as the field's `pattern`."""

    def __init__(self, pattern: str, error: str) -> None:
        self.regex = re.compile(pattern)
        self.rule = error

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self.rule)
        if not is_storable_text(value):
            raise ma.ValidationError(SURROGATE_RULE)
        return value


label_text = _TextRule(LABEL_PATTERN, LABEL_RULE)
value_text = _TextRule(VALUE_PATTERN, VALUE_RULE)


def label_error(value: str) -> str | None:
    """The rule a label breaks, or None (for text that arrives outside a schema: path keys)."""
    try:
        label_text(value)
    except ma.ValidationError as exc:
        return str(exc.messages[0])
    return None
