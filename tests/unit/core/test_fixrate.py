"""healthd.core.fixrate: verdict counts per (service, classification, action), the fix
rate and the skip rule."""

from __future__ import annotations

import pytest

from healthd.core import fixrate
from healthd.core.fixrate import Tally, Tried
from healthd.core.model import Action, Failure
from healthd.core.verdict import Kind

NOW = 1_700_010_000.0
DAY = 86400.0
OOM = Failure.OOM_KILLED
KEY = ("shop/api", OOM, Action.RESTART)


def tried(kind: Kind, ago: float = 3600.0, service: str = "shop/api",
          failure: Failure = OOM, action: Action = Action.RESTART) -> Tried:
    return Tried(service, failure, action, kind, NOW - ago)


def test_verdicts_are_counted_per_service_classification_and_action() -> None:
    rows = [tried(Kind.FIXED), tried(Kind.RECURRED), tried(Kind.RECURRED),
            tried(Kind.FIXED, action=Action.RECREATE),
            tried(Kind.NOT_FIXED, service="shop/web"),
            tried(Kind.FIXED, failure=Failure.UNHEALTHY)]
    t = fixrate.tally(rows, NOW)
    assert t[KEY] == Tally(fixed=1, recurred=2)
    assert t[("shop/api", OOM, Action.RECREATE)] == Tally(fixed=1)
    assert t[("shop/web", OOM, Action.RESTART)] == Tally(not_fixed=1)
    assert t[("shop/api", Failure.UNHEALTHY, Action.RESTART)] == Tally(fixed=1)
    assert len(t) == 4


def test_only_verdicts_inside_the_window_count() -> None:
    rows = [tried(Kind.FIXED, ago=7 * DAY), tried(Kind.FIXED, ago=7 * DAY - 1),
            tried(Kind.RECURRED, ago=0), tried(Kind.RECURRED, ago=-1)]
    assert fixrate.tally(rows, NOW)[KEY] == Tally(fixed=1, recurred=1)
    assert fixrate.tally(rows, NOW, window_s=DAY)[KEY] == Tally(recurred=1)


def test_superseded_and_pending_are_counted_but_are_not_tries() -> None:
    t = Tally(fixed=1, recurred=1, not_fixed=2, superseded=5, pending=1)
    assert t.tries == 4
    assert t.rate == 0.25
    assert t.as_dict() == {"fixed": 1, "recurred": 1, "not_fixed": 2, "superseded": 5,
                           "pending": 1}


def test_no_tries_is_no_rate_not_zero() -> None:
    assert Tally().rate is None
    assert Tally(superseded=3).rate is None


@pytest.mark.parametrize(("tally", "skipped"), [
    (Tally(not_fixed=6), True),
    (Tally(fixed=0, recurred=5), True),
    (Tally(fixed=1, recurred=4), False),  # 20 %: not below the threshold
    (Tally(fixed=1, recurred=5), True),  # 16.7 %
    (Tally(recurred=4), False),  # too few tries to judge
    (Tally(recurred=4, superseded=10), False),  # someone else's changes are not tries
], ids=["none-of-6", "none-of-5", "exactly-20pc", "1-of-6", "4-tries", "superseded"])
def test_a_rung_is_skipped_below_20_percent_over_at_least_5_tries(
        tally: Tally, skipped: bool) -> None:
    assert (fixrate.skip_reason({KEY: tally}, KEY) is not None) is skipped


def test_the_skip_reason_is_the_counts_a_person_can_check() -> None:
    assert fixrate.skip_reason({KEY: Tally(not_fixed=2, recurred=4)}, KEY) == (
        "restart skipped: fixed 0 of 6 memory exhaustions of shop/api in 7 days")


def test_the_threshold_tries_and_window_are_arguments() -> None:
    t = {KEY: Tally(fixed=1, recurred=1)}
    assert fixrate.skip_reason(t, KEY) is None
    assert fixrate.skip_reason(t, KEY, skip_below=0.6, min_tries=2, window_s=DAY) == (
        "restart skipped: fixed 1 of 2 memory exhaustions of shop/api in 1 day")


def test_an_unknown_key_is_never_skipped() -> None:
    assert fixrate.skip_reason({}, KEY) is None


@pytest.mark.parametrize(("seconds", "words"), [
    (7 * DAY, "7 days"), (DAY, "1 day"), (43200.0, "12 h"), (5400.0, "90 min"),
    (45.0, "45 s"), (90061.0, "90061 s")])
def test_windows_read_as_words(seconds: float, words: str) -> None:
    assert fixrate.span(seconds) == words


def test_every_classification_reads_as_a_count() -> None:
    assert fixrate.episodes(Failure.CRASH_LOOP) == "crash loops"
    assert fixrate.episodes(Failure.LATENCY_DEGRADED) == "latency degraded episodes"
