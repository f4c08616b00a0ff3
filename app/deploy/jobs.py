"""Job changes (add, edit, pause, resume, remove, run now) audited like a deploy: "started" here before
the agent is asked, the outcome after, under the ids the agent journals them with. Queries
(job_list, job_runs, job_preview) are plain agent calls."""
from __future__ import annotations

from app.audit.log import AuditLog
from app.remote.transport import Transport

from .audited import AuditedChange
from .errors import named

CHANGES = ("add", "edit", "pause", "resume", "remove", "run")


def jobs(transport: Transport, model: str | None = None) -> list[dict]:
    return transport.agent("job_list", {"model": model} if model else {})["jobs"]


def runs(transport: Transport, name: str, limit: int = 20) -> list[dict]:
    return transport.agent("job_runs", {"name": name, "limit": limit})["runs"]


def preview(transport: Transport, name: str, limit: int = 20) -> dict:
    """The latest result rows and error rows of the job's output: {columns, rows, errors: {columns, rows}}."""
    return transport.agent("job_preview", {"name": name, "limit": limit})


def find(transport: Transport, name: str) -> dict:
    """The job named `name` on the server, or one clear line naming the jobs it has."""
    return named(jobs(transport), name, what="job", server=transport.name, add="berth job add", code="no_job")


def change(transport: Transport, audit: AuditLog, action: str, name: str, model: str, request: dict | None = None,
           reason: str = "") -> dict:
    """Run `job_<action>` on the server, audited on both sides; returns the agent's result."""
    if action not in CHANGES:
        raise ValueError(f"not a job change: {action}")
    trail = AuditedChange(audit, f"job.{action}", server=transport.name, ssh_user=transport.ssh_user, model=model,
                          reason=reason)
    trail.begin()
    with trail.outcome():
        result = transport.agent(f"job_{action}", trail.request(transport.ssh_user, **dict(request or {}, name=name)))
    trail.ok(result)
    return result
