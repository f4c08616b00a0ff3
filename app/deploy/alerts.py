"""Alert rules on a server, for the CLI and the console: changes (add, silence, remove) audited like
a job change ("started" here before the agent is asked, the outcome after, under the ids the agent
journals them with); queries (rules, alerts) and `test` are plain agent calls."""
from __future__ import annotations

from app.audit.log import AuditLog
from app.remote.transport import Transport

from .audited import AuditedChange
from .errors import named

CHANGES = ("add", "silence", "remove")
ALERT_KEYS = ["rule", "server", "model", "state", "since", "value", "notified"]
RULE_KEYS = ["server", "name", "model", "when", "for", "repeat", "notify", "silenced_until"]


def rules(transport: Transport) -> list[dict]:
    """The rules of the server: {name, server, model, when, for, repeat, notify, silenced_until, silence_reason}."""
    return transport.agent("alert_list", {})["rules"]


def alerts(transport: Transport) -> dict:
    """{"alerts": firing, pending and recently resolved, each {rule, server, model, state, since, value,
    summary, notified: [{channel, ok, at, answer}], silenced, inhibited}, "queued": deliveries waiting,
    "evaluator": {pid, reboot, reboot_detail}}."""
    return transport.agent("alert_state", {})


def firing(transport: Transport) -> int:
    return sum(1 for a in alerts(transport)["alerts"] if a["state"] == "firing")


def find(transport: Transport, name: str) -> dict:
    """The alert named `name` on the server, or one clear line naming the alerts it has."""
    return named(rules(transport), name, what="alert", server=transport.name, add="berth alert add", code="no_alert")


def test(transport: Transport, name: str) -> list[dict]:
    """Send a test notification through each channel now: [{channel, ok, status, answer}]."""
    return transport.agent("alert_test", {"name": name})["results"]


def change(transport: Transport, audit: AuditLog, action: str, name: str, model: str | None,
           request: dict | None = None, reason: str = "") -> dict:
    """Run `alert_<action>` on the server, audited on both sides; returns the agent's result."""
    if action not in CHANGES:
        raise ValueError(f"not an alert change: {action}")
    trail = AuditedChange(audit, f"alert.{action}", server=transport.name, ssh_user=transport.ssh_user,
                          model=model, reason=reason)
    trail.begin()
    with trail.outcome():
        params = dict(request or {}, name=name, server=transport.name)
        result = transport.agent(f"alert_{action}", trail.request(transport.ssh_user, **params))
    trail.ok(result)
    return result
