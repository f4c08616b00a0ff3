"""One error shape for the desktop side (Ansible's single result shape): a message an operator can
act on, a machine-readable `code` from the constants below, `detail` for programs, and `log` (the
server's last lines: runner log, pip output) shown under "Details…" or with `berth -v`.

The CLI, the console and the audit log tell failures apart by `code` alone, never by guessing
attributes. Codes written by the agent (its error line, app/agent/protocol.py) keep their spelling
here, since the agent cannot import this module."""
from __future__ import annotations

# -- generic ---------------------------------------------------------------------------------------
FAILED = "failed"
USAGE = "usage"
CANCELLED = "cancelled"
INTERNAL = "internal"

# -- reaching a server (transport, SSH) -------------------------------------------------------------
UNREACHABLE = "unreachable"
CONNECT_FAILED = "connect_failed"
AUTH_FAILED = "auth_failed"
CONNECTION_LOST = "connection_lost"
AGENT_KILLED = "agent_killed"
AGENT_MODIFIED = "agent_modified"
HOST_KEY_UNKNOWN = "host_key_unknown"
HOST_KEY_CHANGED = "host_key_changed"
HOST_KEY_REVOKED = "host_key_revoked"
JUMP_HOST_KEY_UNKNOWN = "jump_host_key_unknown"
JUMP_HOST_KEY_CHANGED = "jump_host_key_changed"
NOT_AGENT = "not_agent"
LOCK_STUCK = "lock_stuck"
PERMISSION_DENIED = "permission_denied"  # the server's policy gives this Unix user too low a role
APPROVAL_PENDING = "approval_pending"  # four eyes: the server stored the change for a second releaser
APPROVAL_EXPIRED = "approval_expired"
ALREADY_DECIDED = "already_decided"
APPROVAL_CHANGED = "approval_changed"  # four eyes: the request is not the one the approver was shown

# -- deploy, rollback, start, stop, predict ---------------------------------------------------------
BUNDLE = "bundle"
UPLOAD = "upload"
NO_SPACE = "no_space"
CORRUPT_BLOB = "corrupt_blob"
MISSING_BLOB = "missing_blob"
PYTHON = "python"
ROLLED_BACK = "rolled_back"
UNHEALTHY = "unhealthy"
START_FAILED = "start_failed"
START_TIMEOUT = "start_timeout"
ALREADY_CURRENT = "already_current"
VERSION_CONFLICT = "version_conflict"
NOT_DEPLOYED = "not_deployed"
NOTHING_DEPLOYED = "nothing_deployed"
NO_RELEASE = "no_release"
NOT_RUNNING = "not_running"
PREDICT_FAILED = "predict_failed"
INVALID_INPUT = "invalid_input"  # the runner's 422: the input is not the shape the model expects
BAD_EXAMPLE = "bad_example"
TOO_LARGE = "too_large"
BAD_REQUIREMENTS = "bad_requirements"

# -- the desktop's own rules ------------------------------------------------------------------------
UNKNOWN_SERVER = "unknown_server"
REASON_REQUIRED = "reason_required"
STAGING_REQUIRED = "staging_required"  # require_staging_first: the bundle never ran on a staging server
CONFIG = "config"
DATABASE_DAMAGED = "database_damaged"

# The connection behind a failure is gone (or never came): drop it and connect again next time.
CONNECTION_CODES = frozenset({CONNECTION_LOST, UNREACHABLE, CONNECT_FAILED, AUTH_FAILED})


class BerthError(Exception):
    """A failure with one clear line for the operator; `code` says which, `detail` and `log` why."""

    default_code = FAILED

    def __init__(self, message: str, code: str | None = None, detail: dict | None = None,
                 log: list[str] | None = None):
        super().__init__(message)
        self.code = code or self.default_code
        self.detail = detail or {}
        self.log = list(log if log is not None else self.detail.get("log") or [])

    @property
    def message(self) -> str:
        return str(self)


def error_code(error: BaseException) -> str:
    """A BerthError's code; "" for any other exception."""
    return error.code if isinstance(error, BerthError) else ""


def error_log(error: BaseException) -> list[str]:
    return error.log if isinstance(error, BerthError) else []


def is_connection_error(error: BaseException) -> bool:
    """A broken socket or a lost / refused connection: the transport behind it is dropped."""
    return isinstance(error, (OSError, EOFError)) or error_code(error) in CONNECTION_CODES


def one_line(error: BaseException) -> str:
    """The message as one line (a traceback-free summary for a banner or stderr)."""
    text = str(error).strip() or type(error).__name__
    return text.replace("\n", " ")
