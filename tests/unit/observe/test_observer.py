"""When a sweep reads the full container list (``observer.list_due``): values in, values out."""

from __future__ import annotations

from healthd.observe.observer import list_due


def test_the_first_sweep_lists() -> None:
    assert list_due(1000.0, None, 30.0, streaming=True, woken=False)


def test_with_the_stream_up_the_list_waits_for_resync() -> None:
    assert not list_due(1005.0, 1000.0, 30.0, streaming=True, woken=False)
    assert not list_due(1029.9, 1000.0, 30.0, streaming=True, woken=False)
    assert list_due(1030.0, 1000.0, 30.0, streaming=True, woken=False)


def test_without_the_stream_every_sweep_lists() -> None:
    assert list_due(1005.0, 1000.0, 30.0, streaming=False, woken=False)


def test_a_wake_after_a_reconnect_lists_at_once() -> None:
    assert list_due(1005.0, 1000.0, 30.0, streaming=True, woken=True)


def test_resync_zero_lists_every_sweep() -> None:
    assert list_due(1005.0, 1000.0, 0.0, streaming=True, woken=False)


def test_a_clock_stepped_back_lists_rather_than_waits() -> None:
    assert list_due(900.0, 1000.0, 30.0, streaming=True, woken=False)
