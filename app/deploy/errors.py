class OperationFailed(Exception):
    """A deploy, rollback, start or stop that did not happen. `log` holds the server's last lines
    (runner log, pip output) so the operator sees why without another command."""

    def __init__(self, message: str, log: list[str] | None = None, code: str = "failed"):
        super().__init__(message)
        self.log = log or []
        self.code = code
