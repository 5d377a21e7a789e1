"""The run lifecycle: statuses, terminal set and the allowed transitions."""

from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "QUEUED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    CANCELLING = "CANCELLING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SYSTEM_ERROR = "SYSTEM_ERROR"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"


ALL_STATUSES: tuple[RunStatus, ...] = tuple(RunStatus)
STATUS_NAMES: tuple[str, ...] = tuple(s.value for s in RunStatus)

TERMINAL_STATUSES: frozenset[RunStatus] = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.SYSTEM_ERROR,
        RunStatus.CANCELLED,
        RunStatus.SKIPPED,
    }
)
NON_TERMINAL_NAMES: tuple[str, ...] = tuple(
    s.value for s in RunStatus if s not in TERMINAL_STATUSES
)

ALLOWED_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset(
        {
            RunStatus.PENDING,
            RunStatus.RUNNING,
            RunStatus.CANCELLING,
            RunStatus.CANCELLED,
            RunStatus.SKIPPED,
            RunStatus.SYSTEM_ERROR,
        }
    ),
    RunStatus.PENDING: frozenset(
        {
            RunStatus.RUNNING,
            RunStatus.CANCELLING,
            RunStatus.CANCELLED,
            RunStatus.FAILED,
            RunStatus.SYSTEM_ERROR,
        }
    ),
    RunStatus.RUNNING: frozenset(
        {
            RunStatus.SUCCEEDED,
            RunStatus.FAILED,
            RunStatus.SYSTEM_ERROR,
            RunStatus.CANCELLING,
            RunStatus.CANCELLED,
        }
    ),
    RunStatus.CANCELLING: frozenset(
        {
            RunStatus.CANCELLED,
            RunStatus.SUCCEEDED,
            RunStatus.FAILED,
            RunStatus.SYSTEM_ERROR,
        }
    ),
}


def is_terminal(status: RunStatus) -> bool:
    return status in TERMINAL_STATUSES


def can_transition(current: RunStatus, target: RunStatus) -> bool:
    return target in ALLOWED_TRANSITIONS.get(current, frozenset())


def resolve_target(requested: RunStatus, attempt: int, max_attempts: int) -> RunStatus:
    """The status a run actually gets when `requested` is asked for.

    A failure with attempts left is a retry: the run goes back to PENDING (the
    contract applies this to every transition to FAILED, from CANCELLING too).
    The caller has already checked that the transition is allowed.
    """
    if requested is RunStatus.FAILED and attempt < max_attempts:
        return RunStatus.PENDING
    return requested


def is_retry(current: RunStatus, new: RunStatus) -> bool:
    """PENDING is only reached from QUEUED, or by a retry (a FAILED turned around)."""
    return new is RunStatus.PENDING and current is not RunStatus.QUEUED


def cancel_target(current: RunStatus) -> RunStatus | None:
    """Where `cancel` takes a run; None when it is already cancelling."""
    if current is RunStatus.RUNNING:
        return RunStatus.CANCELLING
    if current in (RunStatus.QUEUED, RunStatus.PENDING):
        return RunStatus.CANCELLED
    return None
