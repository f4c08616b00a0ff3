class OperationFailed(Exception):
    """A deploy, rollback, start or stop that did not happen. `log` holds the server's last lines
    (runner log, pip output) so the operator sees why without another command."""

    def __init__(self, message: str, log: list[str] | None = None, code: str = "failed"):
        super().__init__(message)
        self.log = log or []
        self.code = code


def audit_failure(audit, action: str, error: Exception, **facts) -> OperationFailed:
    """Record a failed `action` (and the automatic rollback it caused, if any); return the
    OperationFailed to raise in its place."""
    code = getattr(error, "code", "failed")
    audit.record(action, "failed", detail=str(error), **facts)
    if code == "rolled_back":
        audit.record("rollback.auto", "ok", detail=str(error), **facts)
    log = getattr(error, "log", None) or (getattr(error, "detail", None) or {}).get("log") or []
    return OperationFailed(str(error), list(log), code)
