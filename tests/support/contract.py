"""The contract's statuses and system keys (../shared/API.md), written out independently
of the app.

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

CREATED_BY = "system/pipeline_run.created_by"
NAME = "system/pipeline_run.name"
CREATED_AT = "system/pipeline_run.date.created_at"
STATUS = "system/pipeline_run.status"
STATUS_UPDATED_AT = "system/pipeline_run.date.status_updated_at"
