"""healthd.metrics: the ledger's health as Prometheus series."""

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
