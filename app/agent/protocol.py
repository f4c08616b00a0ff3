"""The agent's output protocol, JSON lines on stdout: progress events, then one result or error line.
Kept apart from main.py so the sampler can speak it without importing every command."""
import json

from .layout import AgentError


class Cancelled(AgentError):
    def __init__(self, why):
        super().__init__("cancelled: %s" % why, "cancelled")


def emit_to(out):
    """An emit(kind, **fields) writing one line each; a closed pipe means Berth went away."""
    def emit(kind, **fields):
        fields["event"] = kind
        try:
            out.write(json.dumps(fields) + "\n")
            out.flush()
        except (BrokenPipeError, ValueError):
            raise Cancelled("Berth went away")
    return emit


def fail(out, message, code, extra=None):
    """Write the error line (if anyone still listens); returns the exit code."""
    try:
        out.write(json.dumps(dict(extra or {}, event="error", message=message, code=code)) + "\n")
        out.flush()
    except (BrokenPipeError, ValueError, OSError):
        pass
    return 2 if code == "usage" else 1
