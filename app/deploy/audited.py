"""The audit trail of one server change: "started" committed before anything happens, the outcome
after. The agent gets the ids of the outcome and of a possible automatic rollback too, so the
server's journal names these events as this desktop does and importing it adds no duplicates."""
from __future__ import annotations

import uuid
from contextlib import contextmanager

from app import errors
from app.audit.actor import local_actor
from app.audit.log import AuditLog, Event
from app.errors import error_code, error_log
from app.remote.errors import RemoteError

from .errors import OperationFailed

LOST = "lost"  # the connection broke while the server was working: the outcome is in its journal


class AuditedChange:
    def __init__(self, audit: AuditLog, action: str, **facts):
        self.audit, self.action = audit, action
        self.facts = {k: ("" if v is None else v) for k, v in facts.items()}
        self.started: Event | None = None
        self.outcome_id = uuid.uuid4().hex
        self.auto_id = uuid.uuid4().hex
        self.denied_id = uuid.uuid4().hex  # the agent journals a refusal under this id: one event on import
        self.requested_id = uuid.uuid4().hex  # four eyes: the agent journals approval.requested under it
        self.approval = {}  # four eyes asked for up front (four_eyes_production) and a held change's time limit

    def begin(self, **facts) -> None:
        self.facts.update(facts)
        self.started = self.audit.begin(self.action, **self.facts)

    def event_ids(self) -> dict:
        return {"started": self.started.id, "outcome": self.outcome_id, "rollback_auto": self.auto_id,
                "denied": self.denied_id, "requested": self.requested_id}

    def asks(self) -> dict:
        """The request's four-eyes fields: {"four_eyes": True} when this desktop asks for approval, and
        `expires_s`, how long a change the server holds may wait for it."""
        return dict(self.approval)

    def request(self, ssh_user: str, **params) -> dict:
        """What the agent is sent with the change: who asks, the ids it journals the change under,
        this desktop's head, the reason."""
        return dict(params, actor=dict(local_actor(), ssh_user=ssh_user), event_ids=self.event_ids(),
                    desktop_head=self.audit.desktop_head(), reason=self.facts.get("reason", ""), **self.asks())

    @contextmanager
    def outcome(self):
        """Around the agent call: a RemoteError or OSError is recorded and raised as OperationFailed;
        anything else (Ctrl-C, a closed generator) is recorded as interrupted and raised on."""
        try:
            yield
        except (RemoteError, OSError) as e:
            raise self.failed(e) from None
        except BaseException as e:
            self.failed(OSError(f"interrupted ({type(e).__name__})"))
            raise

    def ok(self, result: dict) -> None:
        changed = {"old": result.get("previous") or "", "new": result.get("version") or ""} \
            if self.action in ("deploy", "rollback") else {}
        self.audit.finish(self.started, "ok", id=self.outcome_id, version=result.get("version", ""),
                          sha256=result.get("sha256") or "", detail=result.get("detail", ""), **changed)

    def _pending(self, error) -> OperationFailed:
        """Four eyes held the change: not failed, not done. Recorded as the agent journalled it."""
        rid = error.detail.get("request") or "?"
        server = self.facts.get("server", "")
        detail = str(error)
        if self.started is not None:
            self.audit.finish(self.started, "pending", id=self.outcome_id, detail=detail)
        self.audit.record("approval.requested", "pending", id=self.requested_id, **dict(self.facts, detail=detail))
        held = OperationFailed(f"{detail}; another releaser runs `berth approve {rid} --server {server}` "
                               f"(`berth approvals --server {server}` lists what waits)", code=errors.APPROVAL_PENDING)
        held.detail = dict(error.detail)
        return held

    def failed(self, error: BaseException, outcome: str = "failed") -> OperationFailed:
        """Record the failure (and the automatic rollback it caused, if any); return the
        OperationFailed to raise in its place."""
        code = error_code(error) or errors.FAILED
        if code == errors.APPROVAL_PENDING:
            return self._pending(error)
        detail = str(error) or type(error).__name__
        if self.started is None:
            self.audit.record(self.action, outcome, detail=detail, **self.facts)
        elif code in (errors.CONNECTION_LOST, errors.AGENT_KILLED):
            # how it ended is the server's to say: its journal's outcome (under the id the agent was
            # given) comes in on the next refresh; this desktop only records that it lost sight of it
            self.audit.finish(self.started, LOST, detail=detail)
        else:
            self.audit.finish(self.started, outcome, id=self.outcome_id, detail=detail)
        if code == errors.PERMISSION_DENIED:  # the server refused this user: on both sides, as the agent did
            self.audit.record("permission.denied", "refused", id=self.denied_id, **dict(self.facts, detail=detail))
        if code == errors.ROLLED_BACK:
            previous = error.detail.get("previous") or ""
            self.audit.record("rollback.auto", "ok", id=self.auto_id, detail=detail,
                              **dict(self.facts, version=previous, old=self.facts.get("version", ""), new=previous))
        return OperationFailed(str(error), error_log(error), code)
