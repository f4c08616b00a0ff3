"""Deploys and rollbacks from the audit log as points in time, for the graphs to draw as markers:
a metric that moves right after a deploy is the first thing an operator wants to see."""
from __future__ import annotations

from datetime import datetime, timezone

MARKER_ACTIONS = ("deploy", "rollback")


def audit_ts(text: str) -> float:
    """Unix time of an audit event's ISO `ts` (naive times are UTC, as the log writes them)."""
    ts = datetime.fromisoformat(text)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.timestamp()


def markers_from_events(events: list[dict], model: str | None) -> list[tuple[float, str]]:
    """(unix ts, label) for the deploys and rollbacks that succeeded, oldest first; the host's
    graphs (model None) name the model in the label."""
    out = []
    for e in events:
        if e.get("action") not in MARKER_ACTIONS or e.get("outcome") != "ok":
            continue
        if model is not None and e.get("model") != model:
            continue
        try:
            ts = audit_ts(e["ts"])
        except (KeyError, ValueError):
            continue
        who = "" if model is not None else f"{e.get('model', '')} "
        out.append((ts, f"{e['action']} {who}{e.get('version', '')}".strip()))
    return sorted(out)
