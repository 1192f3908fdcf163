"""Render ``/status`` snapshots and ledger rows for people (pure).

Owns: the text layout of ``healthd status`` and ``healthd history``. Must never: fetch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from healthd.core.classify import forecast_text


def ago(now: float, then: float | None) -> str:
    """'12 s ago' style; '-' when never."""
    if not then:
        return "-"
    d = max(0.0, now - then)
    if d < 90:
        return f"{d:.0f} s ago"
    if d < 5400:
        return f"{d / 60:.0f} min ago"
    if d < 172800:
        return f"{d / 3600:.1f} h ago"
    return f"{d / 86400:.0f} d ago"


def _forecast_text(row: dict[str, Any]) -> str:
    sig = row.get("signals") or {}
    rows = [*(row.get("forecasts") or []), *(sig.get("forecasts") or [])]
    parts = [forecast_text(f) for f in rows
             if f.get("eta_s") is not None or f.get("state") == "learning"]
    return ", ".join(parts) or ("steady" if rows else "")


def _seconds(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s"


def signals_text(sig: dict[str, Any] | None) -> str:
    """'probe ok 12 ms, errors 3 %, p95 80 ms, log errors 4/min'; '-' without signals."""
    if not sig:
        return "-"
    parts = []
    if sig.get("probe_ok") is not None:
        lat = sig.get("probe_latency_s")
        parts.append(("probe ok" if sig["probe_ok"] else f"probe FAIL ({sig.get('probe_detail')})")
                     + (f" {_seconds(lat)}" if lat is not None else ""))
    if sig.get("error_ratio") is not None:
        parts.append(f"errors {sig['error_ratio'] * 100:.0f} %")
    if sig.get("latency_s") is not None:
        q = sig.get("latency_quantile") or 0.95
        parts.append(f"p{q * 100:g} {_seconds(sig['latency_s'])}")
    if sig.get("log_errors_per_min") is not None:
        parts.append(f"log errors {sig['log_errors_per_min']:.0f}/min")
    if sig.get("metrics_problem"):
        parts.append("metrics skipped")
    return ", ".join(parts) or "-"


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _services_table(stacks: dict[str, Any], now: float) -> list[str]:
    """One row per service of a stack: replicas, health, what it waits on, last action."""
    head = [["SERVICE", "REPLICAS", "HEALTH", "WAITING ON / REASON", "LAST ACTION", "WHEN"]]
    body = []
    for s in stacks.get("services") or []:
        if not s.get("stack") and not s.get("depends_on"):
            continue  # a lone container: its row below says it all
        health = "failing" if s.get("failing") else "ok"
        waits = "; ".join(w.removeprefix("dependency: ") for w in s.get("waiting") or [])
        body.append([s["service"], f"{s['running']}/{s['desired']}", health,
                     waits or s.get("reason") or "-", s.get("last_action") or "-",
                     ago(now, s.get("last_action_at"))])
    lines = [table(head + body)] if body else []
    lines += [f"stack problem: {p}" for p in stacks.get("problems") or []]
    return lines


def swarm_lines(sw: dict[str, Any] | None, now: float) -> list[str]:
    """The Swarm part of ``healthd status``: the leader, then services and nodes."""
    if not sw:
        return []
    me = next((n["node"] for n in sw.get("nodes") or [] if n.get("self")), "?")
    lines = [f"swarm: leader {sw.get('leader') or 'none'}; this node {me} "
             f"({'leads: acts on services and nodes' if sw.get('is_leader') else 'follows'})"]
    head = [["SWARM SERVICE", "MODE", "TASKS", "UPDATE", "NODES", "SCALED BY", "WHEN",
             "DECISION"]]
    body = []
    for s in sw.get("services") or []:
        nodes = ", ".join(sorted({t["node"] for t in s.get("tasks") or []})) or "-"
        try:
            when = float(s.get("scaled_at") or 0.0)
        except ValueError:
            when = 0.0
        body.append([s["service"], s["mode"], f"{s['running']}/{s['desired']}",
                     s.get("update_state") or "-", nodes, s.get("scaled_by") or "-",
                     ago(now, when), s.get("decision") or "-"])
    if body:
        lines.append(table(head + body))
    head = [["NODE", "ROLE", "STATE", "AVAILABILITY", "LEADER", "ITS HEALTHD", "DECISION"]]
    body = [[n["node"], n["role"], n["state"],
             n["availability"] + (f" (by healthd on {n['drained_by']})"
                                  if n.get("drained_by") else ""),
             "yes" if n.get("leader") else "", n.get("peer") or "-", n.get("decision") or "-"]
            for n in sw.get("nodes") or []]
    if body:
        lines.append(table(head + body))
    return lines


def render_status(snap: dict[str, Any]) -> str:
    """Services by stack, then one row per container: health, reason, forecast, last action."""
    now = float(snap.get("now") or 0.0)
    head = [["CONTAINER", "SERVICE", "HEALTH", "REASON", "SIGNALS", "FORECAST", "LAST ACTION",
             "WHEN"]]
    body = []
    rows = sorted(snap.get("containers", []),
                  key=lambda r: (r.get("service") or "~", r["name"]))
    for r in rows:
        reason = "; ".join(r.get("reasons") or []) or "-"
        held = (r.get("decision") or "").partition(" [held: ")[2].rstrip("]")
        if held:
            reason += f" (held: {held})"
        last = r.get("last_action") or "-"
        if r.get("last_action_outcome"):
            last = f"{last} ({r['last_action_outcome']})"
        body.append([r["name"], r.get("service") or "-", r["health"], reason,
                     signals_text(r.get("signals")), _forecast_text(r) or "-", last,
                     ago(now, r.get("last_action_at"))])
    mode = " (dry-run)" if snap.get("dry_run") else ""
    engine = "connected" if snap.get("engine_connected") else "DISCONNECTED"
    lines = [f"healthd{mode}: engine {engine}, stats via {snap.get('stats_path')}, "
             f"{len(body)} containers"]
    for h in snap.get("host") or []:
        lines.append(f"host {forecast_text(h)}")
    lines += _services_table(snap.get("stacks") or {}, now)
    lines += swarm_lines(snap.get("swarm"), now)
    lines += ledger_lines(snap.get("ledger"), now)
    lines += control_lines(snap, now)
    lines += [f"INCIDENT {incident_line(i)}" for i in snap.get("incidents") or []]
    lines.append(table(head + body))
    return "\n".join(lines)


def incident_line(i: dict[str, Any]) -> str:
    """One incident (``core.incident.Incident.as_dict``) in one line."""
    end = i.get("state") or "open"
    if i.get("closed"):
        end = f"{end} {datetime.fromtimestamp(float(i['closed'])).strftime('%m-%d %H:%M:%S')}"
    opened = datetime.fromtimestamp(float(i.get("opened") or 0)).strftime("%m-%d %H:%M:%S")
    held = i.get("held_dependents") or []
    return (f"{i.get('id')}: {str(i.get('failure')).replace('_', ' ')} on {i.get('target')}, "
            f"opened {opened}, {end}: {i.get('chain')}"
            + (f"; holding {', '.join(held)}" if held else ""))


def render_outcomes(rows: Sequence[dict[str, Any]], window_s: float | None = None) -> str:
    """Fix rates per service, classification and action (``healthd status --outcomes``)."""
    if not rows:
        return "no judged actions yet"
    head = [["SERVICE", "CLASSIFICATION", "ACTION", "FIXED", "RECURRED", "NOT FIXED",
             "SUPERSEDED", "FIX RATE"]]
    body = [[str(r["service"]), str(r["classification"]), str(r["action"]), str(r["fixed"]),
             str(r["recurred"]), str(r["not_fixed"]), str(r["superseded"]),
             "-" if r.get("fix_rate") is None
             else f"{float(r['fix_rate']) * 100:.0f} % of {r['tries']}"] for r in rows]
    span = f" in the last {window_s / 86400:g} days" if window_s else ""
    return f"what fixed what{span}\n" + table(head + body)


def _until(now: float, t: float | None) -> str:
    if t is None:
        return "until resumed"
    left = max(0.0, t - now)
    return f"for {left:.0f} s more" if left < 90 else f"for {left / 60:.0f} min more"


def control_lines(snap: dict[str, Any], now: float) -> list[str]:
    """Pauses in force, then the decisions waiting for approval (with the ids to type)."""
    lines = [f"PAUSED {m['target']}: {m.get('reason') or 'no reason given'} (by {m.get('who')}, "
             f"{ago(now, m.get('since'))}, {_until(now, m.get('until'))})"
             for m in snap.get("maintenance") or []]
    pending = snap.get("pending") or []
    if pending:
        head = [["PENDING", "ACTION", "TARGET", "RULE", "EXPIRES", "APPROVE WITH"]]
        lines.append(table(head + [
            [p["id"], p["action"], p["target"], p["rule"],
             _until(now, p.get("expires")).removeprefix("for ").replace(" more", ""),
             f"healthd approve {p['id']}"] for p in pending]))
    return lines


def ledger_lines(h: dict[str, Any] | None, now: float) -> list[str]:
    """What ``healthd status`` says about the ledger: nothing while all is well."""
    if not h:
        return []
    lines = []
    if h.get("set_aside"):
        lines.append(f"corrupt state file set aside as {h['set_aside']}; history started afresh")
    if not h.get("up"):
        waiting = f"; {h.get('pending', 0)} rows waiting"
        if h.get("dropped"):
            waiting += f", {h['dropped']} dropped"
        lines.append(f"history NOT persisted since {ago(now, h.get('since'))}: "
                     f"{h.get('error')}{waiting}")
    return lines


def explain(snap: dict[str, Any], name: str) -> str | None:
    """The one-line explanation of the current decision for container ``name``."""
    for r in snap.get("containers", []):
        if r["name"] == name or r["id"].startswith(name):
            return str(r.get("decision") or r.get("last_action") or f"{r['name']}: nothing to do")
    return None


def render_history(rows: Sequence[dict[str, Any]], now: float, oldest: float | None = None,
                   kept_days: float | None = None) -> str:
    """Ledger rows, newest first, under how far back the ledger reaches (``oldest``)."""
    head = [["ID", "WHEN", "CONTAINER", "ACTION", "OUTCOME", "VERDICT", "EXPLANATION"]]
    body = [[str(r["id"]), ago(now, r["at"]), r["container"], r["action"], r["outcome"],
             (r.get("verdict") or {}).get("kind", ""),
             r["explanation"] + (f" - error: {r['error']}" if r.get("error") else "")
             + (f" - verdict: {r['verdict']['evidence']}" if r.get("verdict") else "")]
            for r in rows]
    if not body:
        return "no recorded decisions"
    if oldest is None:
        return table(head + body)
    since = datetime.fromtimestamp(oldest).strftime("%Y-%m-%d %H:%M")
    kept = f" ({kept_days:g} days kept)" if kept_days is not None else ""
    return f"history since {since}{kept}\n" + table(head + body)
