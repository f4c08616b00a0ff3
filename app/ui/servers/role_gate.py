"""The user's role on a server, as the server's agent says (`whoami`), shown and reflected in the
buttons: an action the role does not allow is disabled, its tooltip naming the role it needs. This
protects nothing (the agent refuses anyway, docs/permissions.md); it saves a click that would fail."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel, QPushButton

from app.agent import roles
from app.deploy import policy

from app.ui.operations import ServerOp


def role_on(me: dict, model: str | None = None) -> str | None:
    """The role `whoami` gives for `model` (its own entry only where higher), else for every model."""
    granted = me.get("roles") or {}
    return granted.get(model) if model and model in granted else granted.get("*")


def refusal(me: dict, command: str, model: str | None = None) -> str:
    """'' when the role allows `command`; else the tooltip: the role needed and the one the user has."""
    need = roles.needed(command, bool(me.get("production")))
    have = role_on(me, model)
    if roles.rank(have) >= roles.rank(need):
        return ""
    where = " on this production server" if me.get("production") and roles.NEEDS[command] == roles.CHANGE else ""
    return f"Needs the {need} role{where}; you ({me.get('user')}) have {have or 'no role'}. An admin can grant it."


class RoleGate:
    """Holds one server's `whoami` and applies it to `buttons` ([(agent command, button)]) and `label`.
    `apply()` again after whatever else enables the buttons (a status refresh); with `owns_enabled`
    nothing else does, and an allowed button is enabled again."""

    def __init__(self, view, label: QLabel, buttons: list[tuple[str, QPushButton]], owns_enabled: bool = False):
        self.view, self.label, self.owns_enabled = view, label, owns_enabled
        self.buttons = {b: command for command, b in buttons}
        self._tips = {b: b.toolTip() for b in self.buttons}
        self._refused: dict[QPushButton, str] = {}
        self.label.setObjectName(self.label.objectName() or "roleLabel")
        self.server: str | None = None
        self.model: str | None = None
        self.me: dict | None = None
        self._task = None

    def show(self, server: str, model: str | None = None) -> None:
        """Ask the server who this login is there (again when the server changes)."""
        changed = server != self.server
        self.server, self.model = server, model
        if changed:
            self.me = None
            for button in list(self._refused):  # the last server's refusals are not this one's
                button.setToolTip(self._tips[button])
                if self.owns_enabled:
                    button.setEnabled(True)
            self._refused.clear()
            self.label.setText("you: …")
            self._task = (ServerOp(self.view, server, f"whoami {server}", lambda ctx: policy.whoami(ctx.transport))
                          .only_if(lambda s=server: s == self.server)
                          .success(self._got).failure(lambda e: self.label.setText("you: unknown (no answer)"))
                          .run())
        self.apply()

    def forget(self) -> None:
        """The policy changed: ask again."""
        server, self.server = self.server, None
        if server:
            self.show(server, self.model)

    def _got(self, me: dict) -> None:
        self.me = me
        self.apply()

    def apply(self) -> None:
        if self.me is None:
            return
        role = role_on(self.me, self.model)
        prod = " · production server" if self.me.get("production") else ""
        self.label.setText(f"you: {role or 'no role'} ({self.me.get('user')}){prod}")
        self.label.setToolTip("Your role here, as the server's policy gives it to the Unix user Berth logs in as")
        for button, command in self.buttons.items():
            why = refusal(self.me, command, self.model)
            if why:
                button.setEnabled(False)
                button.setToolTip(why)
            elif button in self._refused:
                if button.toolTip() == self._refused[button]:
                    button.setToolTip(self._tips[button])
                if self.owns_enabled:
                    button.setEnabled(True)
            self._refused.pop(button, None)
            if why:
                self._refused[button] = why
