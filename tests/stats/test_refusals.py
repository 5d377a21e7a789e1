"""What a process remembers of its refusals (runstats_app.stats.refusals)."""

from __future__ import annotations

from runstats_app.stats.refusals import MAX_CALLERS, RefusalWindows


def test_a_window_for_everyone_refuses_every_caller_until_it_ends():
    windows = RefusalWindows()
    windows.close("hosts", None, until=10.0)
    assert windows.open_for("anyone", now=9.0) == ("hosts", 1.0)
    assert windows.open_for(None, now=9.5) == ("hosts", 0.5)
    assert windows.open_for("anyone", now=10.0) is None
    assert windows.any_open(now=9.9) and not windows.any_open(now=10.0)


def test_a_callers_window_refuses_that_caller_only():
    windows = RefusalWindows()
    windows.close("client", "greedy", until=10.0)
    assert windows.open_for("greedy", now=5.0) == ("client", 5.0)
    assert windows.open_for("other", now=5.0) is None
    assert windows.open_for(None, now=5.0) is None
    assert windows.any_open(now=5.0)


def test_a_window_is_only_ever_extended():
    windows = RefusalWindows()
    windows.close("hosts", None, until=10.0)
    windows.close("process", None, until=8.0)
    assert windows.open_for(None, now=9.0) == ("hosts", 1.0)


def test_reopening_ends_every_window():
    windows = RefusalWindows()
    windows.close("hosts", None, until=10.0)
    windows.close("client", "greedy", until=10.0)
    windows.reopen()
    assert windows.open_for("greedy", now=1.0) is None
    assert not windows.any_open(now=1.0)


def test_callers_remembered_are_bounded():
    windows = RefusalWindows()
    for n in range(MAX_CALLERS + 10):
        windows.close("client", f"caller-{n}", until=float("inf"))
    assert windows.open_for("caller-0", now=0.0) is not None
    assert windows.open_for(f"caller-{MAX_CALLERS + 5}", now=0.0) is None
