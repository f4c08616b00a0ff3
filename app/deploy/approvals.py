"""Four eyes from the desktop (docs/permissions.md): list what waits on a server, and approve or
reject a request. The agent performs the change it stored; this side only names the request, and
audits the decision and the change under the ids the agent journals them with."""
from __future__ import annotations

import uuid
from collections.abc import Iterator

from app import errors
from app.audit.log import AuditLog
from app.errors import error_code
from app.remote.errors import RemoteError
from app.remote.transport import Transport

from .audited import AuditedChange
from .errors import OperationFailed
from .progress import Progress, agent_stream

# the agent's answers that decide nothing: the request stays as it was (the change was not attempted)
DECISION_CODES = {errors.PERMISSION_DENIED, errors.APPROVAL_EXPIRED, errors.ALREADY_DECIDED, "approval_tampered",
                  errors.APPROVAL_CHANGED,
                  "not_found", errors.USAGE, "locked"}
ACTIONS = {"deploy": "deploy", "rollback": "rollback", "port.set": "port.set", "experiment_start": "experiment.start"}


def listed(transport: Transport) -> dict:
    """{requests: [{id, state, command, model, version, sha256 (the bundle's), digest (the request
    file's sha256: what an approval binds to), what, requested_by, requested_at,
    expires_at, reason, decided_by, decided_at, decision_reason}], four_eyes: {"*"|MODEL: bool}}."""
    return transport.agent("approvals", {})


def find(transport: Transport, rid: str) -> dict:
    listing = listed(transport)["requests"]
    for request in listing:
        if request["id"] == rid:
            return request
    pending = [r["id"] for r in listing if r["state"] == "pending"]
    raise OperationFailed(f"there is no approval request {rid} on {transport.name}"
                          + (f"; waiting there: {', '.join(pending)}" if pending else "; nothing waits there"),
                          code="not_found")


def decide(transport: Transport, audit: AuditLog, rid: str, reason: str = "", reject: bool = False,
           expect_sha256: str | None = None) -> Iterator[Progress]:
    """Approve request `rid` (the server then makes the change: its progress is yielded) or reject it.
    An approval is bound to `expect_sha256`, the request digest the approver was shown (a prefix of 16+
    hex digits); without it, to the digest listed now. The server refuses (`approval_changed`) if the
    request it holds is not that one. A rejection is not bound: whatever it has become, it never runs.
    Audited as the agent journals it: `approval.approved` / `approval.rejected` / `approval.expired`,
    then the change itself (started, outcome) under the ids the agent wrote them with."""
    request = find(transport, rid)
    facts = dict(server=transport.name, ssh_user=transport.ssh_user, model=request["model"],
                 version=request.get("version") or "", sha256=request.get("sha256") or "")
    story = f"{rid} asked by {request['requested_by']}: {request['what']}"
    trail = AuditedChange(audit, "approval.rejected" if reject else "approval.approved", **facts, reason=reason)
    trail.begin(detail=story)
    change = AuditedChange(audit, ACTIONS.get(request["command"], request["command"]), **facts,
                           reason=request.get("reason") or "")
    change_ids = {"started": uuid.uuid4().hex, "outcome": change.outcome_id, "rollback_auto": change.auto_id}
    ids = dict(trail.event_ids(), approved=trail.outcome_id, expired=uuid.uuid4().hex, changed=uuid.uuid4().hex,
               **change_ids)
    payload = dict(trail.request(transport.ssh_user, id=rid, model=request["model"], reject=reject), event_ids=ids)
    if not reject:
        payload["expect_sha256"] = expect_sha256 or request.get("digest")
    try:
        result = yield from agent_stream(transport, "approve", payload)
    except (RemoteError, OSError) as e:
        code = error_code(e)
        if reject or code in DECISION_CODES:
            if code == errors.APPROVAL_EXPIRED:
                audit.record("approval.expired", "expired", id=ids["expired"], **dict(facts, detail=str(e)))
            if code == errors.APPROVAL_CHANGED:
                audit.record("approval.changed", "refused", id=ids["changed"], **dict(facts, detail=str(e)))
            raise trail.failed(e, "refused" if code in DECISION_CODES else "failed") from None
        _approved(trail, change, change_ids, story)  # decided, then the change itself failed on the server
        raise change.failed(e) from None
    if reject:
        audit.finish(trail.started, "ok", id=trail.outcome_id, detail=result.get("detail", ""))
        return result
    _approved(trail, change, change_ids, story)
    change.ok(result)
    return result


def _approved(trail: AuditedChange, change: AuditedChange, ids: dict, story: str) -> None:
    trail.audit.finish(trail.started, "ok", id=trail.outcome_id, detail=story)
    change.started = change.audit.begin(change.action, id=ids["started"], **dict(change.facts, detail=story))
