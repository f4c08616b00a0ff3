"""A server's SMTP relay for e-mail alerts, set from the desktop and audited on both sides like a
job change. The password travels inside the agent's JSON request only (never argv, never the
audit log); the agent keeps it in <root>/.berth/smtp.json, readable by its user alone."""
from __future__ import annotations

from app.audit.log import AuditLog
from app.remote.transport import Transport

from .audited import AuditedChange


def set_smtp(transport: Transport, audit: AuditLog, settings: dict, password: str = "") -> dict:
    """Run `alert_smtp_set` with `settings` (host, port, from, user, security, ca_pem,
    allow_plaintext) and the password; returns the agent's result (its `settings` hide the password)."""
    trail = AuditedChange(audit, "server.smtp", server=transport.name, ssh_user=transport.ssh_user)
    trail.begin(detail=f"SMTP relay {settings.get('host')}:{settings.get('port') or 'default port'}")
    with trail.outcome():
        result = transport.agent("alert_smtp_set", trail.request(transport.ssh_user,
                                                                 **dict(settings, password=password)))
    trail.ok(result)
    return result


def test_smtp(transport: Transport, to: str) -> dict:
    """One test mail to `to` through the server's relay, sent by the server as its alerts will be:
    {"ok", "status", "answer"} with the relay's answer. Nothing changes, so nothing is audited."""
    return transport.agent("alert_smtp_test", {"to": to, "server": transport.name})
