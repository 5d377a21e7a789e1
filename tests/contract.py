"""The contract's statuses (../shared/API.md), written out independently of the app.

Tests compare the app against these, so a change to the app's own lists
cannot silently change what the tests expect.
"""

STATUSES = (
    "QUEUED",
    "PENDING",
    "RUNNING",
    "CANCELLING",
    "SUCCEEDED",
    "FAILED",
    "SYSTEM_ERROR",
    "CANCELLED",
    "SKIPPED",
)
TERMINAL = ("SUCCEEDED", "FAILED", "SYSTEM_ERROR", "CANCELLED", "SKIPPED")
NON_TERMINAL = tuple(status for status in STATUSES if status not in TERMINAL)
