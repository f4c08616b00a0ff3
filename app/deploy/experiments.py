"""Experiments between two releases of a model on one server (docs/experiments.md), for the CLI
and (later) the console: start and stop audited on both sides like a job change ("started" here
before the agent is asked, the outcome after, under the id the agent journals it with); status is a
plain agent call."""
from __future__ import annotations

from app.audit.log import AuditLog
from app.remote.transport import Transport

from .audited import AuditedChange

FIGURES = ("version", "weight", "requests", "errors", "rejected", "p50_ms", "p95_ms", "p99_ms")


def status(transport: Transport, model: str) -> dict:
    """{mode, state, started, ended, detail, a: {...}, b: {...}, agreement, verdict, router, canary?}."""
    return transport.agent("experiment_status", {"model": model})


def start(transport: Transport, audit: AuditLog, model: str, settings: dict) -> dict:
    return _change(transport, audit, "start", model, settings)


def stop(transport: Transport, audit: AuditLog, model: str, promote: bool = False) -> dict:
    return _change(transport, audit, "stop", model, {"promote": promote})


def _change(transport, audit, action, model, request):
    trail = AuditedChange(audit, f"experiment.{action}", server=transport.name, ssh_user=transport.ssh_user,
                          model=model)
    trail.begin()
    with trail.outcome():
        result = transport.agent(f"experiment_{action}", trail.request(transport.ssh_user, **dict(request, model=model)))
    if action == "start":
        version = result["b"]
    else:
        version = result["b" if result["state"] == "promoted" else "a"]["version"]
    trail.ok(dict(result, version=version))
    return result


def label_series(transport: Transport, model: str, since: float, bucket_s: float) -> dict:
    """Accuracy or MAE per version over time from the labelled requests since `since`, in buckets of
    `bucket_s` seconds: {version: {"figure": "accuracy" | "mae", "points": [[t, labelled, value]]}}."""
    got = transport.agent("feedback_figures", {"model": model, "since": since, "bucket_s": bucket_s})
    return got.get("series") or {}
