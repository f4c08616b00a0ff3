"""The user's role on a server, as the server's agent says (`whoami`), shown and reflected in the
buttons: an action the role does not allow is disabled, its tooltip naming the role it needs. This
protects nothing (the agent refuses anyway, docs/permissions.md); it saves a click that would fail.
A refused button stays disabled whatever else enables it (a selection, a status refresh): the gate
watches its enabled state, so the views need not know about roles; when the role allows it again,
`released` tells the view to set its buttons as its own state says."""
from __future__ import annotations

import time
import weakref

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtWidgets import QAbstractButton, QLabel

from app.agent import roles
from app.deploy import policy

from app.ui.operations import ServerOp

KNOWN_S = 60  # a server's `whoami` is reused this long when views switch between servers
_KNOWN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # runner -> {server: (when, its whoami)}


def _known_of(runner) -> dict[str, tuple[float, dict]]:
    """One session's answers (its task runner's), shared by its gates and the fleet menu."""
    return _KNOWN.setdefault(runner, {})


def known(runner, server: str) -> dict | None:
    """The server's `whoami` as a gate of this session got it less than KNOWN_S ago, else None."""
    when, me = _known_of(runner).get(server, (0.0, None))
    return me if time.monotonic() - when <= KNOWN_S else None


def refusals(runner, targets: list[tuple[str, str | None]], command: str) -> list[str]:
    """For the fleet menu: "MODEL on SERVER: why" for each target whose known role refuses `command`
    (a model of None: the highest role on that server, as a deploy's model is not known yet)."""
    out = []
    for server, model in targets:
        me = known(runner, server)
        if me is None:
            continue
        if model is None:
            best = max((m for m in me.get("roles") or {} if m != "*"),
                       key=lambda m: roles.rank(me["roles"][m]), default=None)
            why = refusal(me, command, best) if best else refusal(me, command)
        else:
            why = refusal(me, command, model)
        if why:
            out.append(f"{model + ' on ' if model else ''}{server}: {why}")
    return out


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


class RoleGate(QObject):
    """Holds one server's `whoami` (each server's, once asked, until `forget()`) and applies it to
    `buttons` ([(agent command, button)], more with `add()`) and `label`. With `owns_enabled` nothing
    else enables the buttons, and one the role allows again is enabled; otherwise `released` asks the
    view to enable what its state allows."""

    released = Signal()

    def __init__(self, view, label: QLabel, buttons: list[tuple[str, QAbstractButton]], owns_enabled: bool = False):
        super().__init__(view)
        self.view, self.label, self.owns_enabled = view, label, owns_enabled
        self.buttons: dict[QAbstractButton, str] = {}
        self._tips: dict[QAbstractButton, str] = {}
        self._refused: dict[QAbstractButton, str] = {}
        self._setting = False
        self.label.setObjectName(self.label.objectName() or "roleLabel")
        self.server: str | None = None
        self.model: str | None = None
        self.me: dict | None = None
        self._task = None
        self.add(buttons)

    def add(self, buttons: list[tuple[str, QAbstractButton]]) -> None:
        """Gate these too (another tab's actions, with the same `whoami`)."""
        for command, button in buttons:
            roles.NEEDS[command]  # a command with no role is a typo here: fail now, not on a click
            self.buttons[button] = command
            self._tips[button] = button.toolTip()
            button.installEventFilter(self)
        self.apply()

    def eventFilter(self, watched, event) -> bool:
        if (event.type() == QEvent.Type.EnabledChange and not self._setting and watched in self._refused
                and watched.isEnabled()):
            self._enable(watched, False)  # enabled by its view (a selection): the role still refuses it
        return False

    def _enable(self, button: QAbstractButton, on: bool) -> None:
        self._setting = True
        try:
            button.setEnabled(on)
        finally:
            self._setting = False

    def show(self, server: str, model: str | None = None) -> None:
        """Ask the server who this login is there (when the server changes and it was not asked yet)."""
        changed = server != self.server
        self.server, self.model = server, model
        if changed:
            self.me = known(self.view.runner, server)
            self._release()
            self.label.setText("you: …")
            if self.me is None:
                self._task = (ServerOp(self.view, server, f"whoami {server}", lambda ctx: policy.whoami(ctx.transport))
                              .only_if(lambda s=server: s == self.server)
                              .success(lambda me, s=server: self._got(me, s))
                              .failure(lambda e: self.label.setText("you: unknown (no answer)"))
                              .run())
        self.apply()

    def forget(self) -> None:
        """The policy changed: ask again."""
        server, self.server = self.server, None
        _known_of(self.view.runner).pop(server or "", None)
        if server:
            self.show(server, self.model)

    def _got(self, me: dict, server: str | None = None) -> None:
        self.me = me
        _known_of(self.view.runner)[server or self.server] = (time.monotonic(), me)
        self.apply()

    def _release(self) -> None:
        """The last server's refusals are not this one's."""
        refused, self._refused = self._refused, {}
        for button, why in refused.items():
            if button.toolTip() == why:
                button.setToolTip(self._tips[button])
            if self.owns_enabled:
                self._enable(button, True)
        if refused:
            self.released.emit()

    def apply(self) -> None:
        if self.me is None:
            return
        role = role_on(self.me, self.model)
        prod = " · production server" if self.me.get("production") else ""
        self.label.setText(f"you: {role or 'no role'} ({self.me.get('user')}){prod}")
        self.label.setToolTip("Your role here, as the server's policy gives it to the Unix user Berth logs in as")
        freed = False
        for button, command in self.buttons.items():
            why = refusal(self.me, command, self.model)
            before = self._refused.pop(button, None)
            if why:
                self._refused[button] = why
                self._enable(button, False)
                button.setToolTip(why)
            elif before is not None:
                if button.toolTip() == before:
                    button.setToolTip(self._tips[button])
                if self.owns_enabled:
                    self._enable(button, True)
                freed = True
        if freed:
            self.released.emit()
