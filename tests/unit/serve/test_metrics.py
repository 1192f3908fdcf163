"""healthd.serve.metrics: the exposition healthd serves."""

from __future__ import annotations

from healthd.serve.metrics import Metrics


def series(m: Metrics) -> dict[str, float]:
    out = {}
    for line in m.render().decode().splitlines():
        if line.startswith("healthd_ledger_"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_ledger_up_pending_and_dropped_rows() -> None:
    m = Metrics()
    m.set_ledger(True, 0, 0)
    assert series(m)["healthd_ledger_up"] == 1.0
    m.set_ledger(False, 12, 3)
    m.set_ledger(False, 14, 5)  # dropped is the ledger's running total
    got = series(m)
    assert got["healthd_ledger_up"] == 0.0
    assert got["healthd_ledger_pending_writes"] == 14.0
    assert got["healthd_ledger_dropped_rows_total"] == 5.0


def test_no_created_series_are_exported() -> None:
    m = Metrics()
    m.actions.labels("restart", "succeeded").inc()
    m.latency.labels("restart").observe(0.01)
    text = m.render().decode()
    assert "healthd_actions_total{" in text and "healthd_event_to_action_seconds_bucket" in text
    assert "_created" not in text


def test_unauthorized_counter_starts_at_zero_for_every_reason() -> None:
    text = Metrics().render().decode()
    for reason in ("missing", "wrong", "unconfigured"):
        assert f'healthd_http_unauthorized_total{{reason="{reason}"}} 0.0' in text


def test_event_and_refit_series_exist_before_the_first_event() -> None:
    from healthd.observe.engine import EVENTS
    from healthd.serve.metrics import EVENT_VERBS

    assert EVENT_VERBS == EVENTS
    text = Metrics().render().decode()
    assert 'healthd_events_total{action="die"} 0.0' in text
    assert 'healthd_forecast_refits_total{result="ok"} 0.0' in text
