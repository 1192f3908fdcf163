"""healthd.serve.metrics: the exposition healthd serves."""

from __future__ import annotations

from healthd.serve.metrics import Metrics


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
