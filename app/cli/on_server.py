"""The shape `berth approvals|approve|policy|whoami` share: check the arguments here (a typo costs no
connection; the agent checks them again), connect to the one server named, make one call, and turn
the server's refusal into one line naming the server."""
from __future__ import annotations

from app.agent.layout import AgentError

from .base import Failed, workspace
from .selectors import resolve_one


def checked(*checks) -> None:
    """Run each check (a callable); the first AgentError becomes the command's one-line failure."""
    try:
        for check in checks:
            check()
    except AgentError as e:
        raise Failed(str(e)) from None


def on_server(server: str, call, held: bool = False):
    """(the server's name, `call(transport, workspace)`); OperationFailed -> "S: why" with its code."""
    from app.deploy.errors import OperationFailed

    ws = workspace()
    with ws.connect(resolve_one(ws, server), held=held) as t:
        try:
            return t.name, call(t, ws)
        except OperationFailed as e:
            raise Failed(f"{t.name}: {e}", code=e.code) from None
