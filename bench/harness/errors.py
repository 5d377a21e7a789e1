"""The one exception of the harness."""


class HarnessError(RuntimeError):
    """The benchmark itself broke (as opposed to a performance goal being missed)."""
