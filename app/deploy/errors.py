from app import errors
from app.errors import BerthError


class OperationFailed(BerthError):
    """A deploy, rollback, start or stop that did not happen. `log` holds the server's last lines
    (runner log, pip output) so the operator sees why without another command."""

    def __init__(self, message: str, log: list[str] | None = None, code: str = errors.FAILED):
        super().__init__(message, code, log=log or [])
