"""Rollback, start, stop and port.set: one agent command each, audited locally whatever the outcome."""
from collections.abc import Iterator

from app.audit.actor import local_actor
from app.audit.log import AuditLog
from app.remote.errors import RemoteError
from app.remote.transport import Transport

from .audited import AuditedChange
from .progress import Progress, agent_stream


def change(transport: Transport, audit: AuditLog, action: str, model: str, reason: str = "",
           approval: dict | None = None, **params) -> Iterator[Progress]:
    """Run `action` ("rollback" | "start" | "stop" | "port.set") on `model`; yields progress, returns the result.
    `approval` (Workspace.approval_fields): four eyes asked for up front, and the time limit of a held change."""
    trail = AuditedChange(audit, action, server=transport.name, ssh_user=transport.ssh_user, model=model,
                          version=params.get("to") or "", reason=reason)
    trail.approval = approval or {}
    trail.begin()
    with trail.outcome():
        result = yield from agent_stream(transport, action, trail.request(transport.ssh_user, model=model, **params))
    trail.ok(result)
    return result


def run_to_end(gen: Iterator[Progress], on_progress=None):
    """Drive a progress generator to its end; returns its return value."""
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_progress:
            on_progress(p)


def lock_state(transport: Transport) -> dict:
    """The server lock: {"held", "holder" (who, what, since, pid), "holder_alive"}."""
    return transport.agent("status", {})["lock"]


def break_lock(transport: Transport, audit: AuditLog, pid: int, reason: str = "") -> dict:
    """End the stuck agent `pid` that holds the server lock (the operator saw and confirmed it)."""
    trail = AuditedChange(audit, "lock.break", server=transport.name, ssh_user=transport.ssh_user, reason=reason)
    trail.begin()
    try:
        result = transport.agent("unlock", {"pid": pid, "event_ids": trail.event_ids(), "reason": reason,
                                            "actor": dict(local_actor(), ssh_user=transport.ssh_user)})
    except (RemoteError, OSError) as e:
        raise trail.failed(e) from None
    trail.ok(result)
    return result
