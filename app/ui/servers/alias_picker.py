"""The server dialog's "From ~/.ssh/config" row: a Host of the user's ssh config to fill the address
from, with a note saying what else it brings (jump hosts, keys). The config is read off the GUI
thread when the picker opens; an alias the server uses but the config lost stays listed, marked."""
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget

from app.ui.operations import BackgroundOp

NO_ALIAS_TEXT = "(none: type the address below)"


def read_aliases() -> tuple[dict, str]:
    """({alias: Endpoint}, problem text) from the user's ssh config; off the GUI thread."""
    from app.remote.sshconfig import SSHConfigError, list_aliases, resolve

    out = {}
    try:
        names = list_aliases()
    except SSHConfigError as e:
        return {}, str(e)
    problems = []
    for name in names:
        try:
            out[name] = resolve(name)
        except SSHConfigError as e:  # e.g. ProxyCommand: not offered
            problems.append(str(e))
    return out, "\n".join(problems)


def suggested_name(alias: str) -> str:
    """A valid server name from an alias (lower case, other characters become '-')."""
    name = "".join(c if c in "abcdefghijklmnopqrstuvwxyz0123456789._-" else "-" for c in alias.lower()).lstrip("._-")
    return name[:63] or "server"


class AliasPicker(QWidget):
    """The alias combo and its note. `current` is the alias the server uses already ("" for none).

    Signals:
        chosen(str alias, object endpoint): the operator picked an alias (endpoint None: "none", or
            one no longer in the config)
    """

    chosen = Signal(str, object)

    def __init__(self, runner, current: str = "", parent=None):
        super().__init__(parent)
        self.runner = runner
        self.current = current
        self.aliases: dict = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        self.combo.setObjectName("aliasCombo")
        self.combo.addItem(NO_ALIAS_TEXT, "")
        self.combo.setToolTip("A Host of your ~/.ssh/config: fills host, port and user; its ProxyJump, "
                              "IdentityFile and ServerAliveInterval are used at each connection")
        self.note = QLabel()
        self.note.setObjectName("aliasNote")
        self.note.setWordWrap(True)
        self.note.hide()
        layout.addWidget(self.combo)
        layout.addWidget(self.note)
        self.combo.activated.connect(self._activated)
        self.task = BackgroundOp(self, "ssh aliases", lambda ctx: read_aliases()).success(self._loaded).run()

    def alias(self) -> str:
        return self.combo.currentData() or ""

    def _loaded(self, answer) -> None:
        self.task = None
        self.aliases, problem = answer
        for name in self.aliases:
            self.combo.addItem(name, name)
        if self.current and self.current not in self.aliases:
            self.combo.addItem(f"{self.current} (no longer in ~/.ssh/config)", self.current)
        if self.current:
            self.combo.setCurrentIndex(self.combo.findData(self.current))
            self._show_note(self.current)
        if problem:
            self.combo.setToolTip(problem)
        self.combo.setEnabled(self.combo.count() > 1)

    def _activated(self, _index: int) -> None:
        name = self.combo.currentData()
        self._show_note(name)
        self.chosen.emit(name or "", self.aliases.get(name) if name else None)

    def _show_note(self, name: str) -> None:
        ep = self.aliases.get(name) if name else None
        text = ""
        if ep is not None:
            parts = []
            if ep.jumps:
                parts.append("through " + " → ".join(j.describe() for j in ep.jumps))
            if ep.identity_files:
                parts.append("key " + ", ".join(ep.identity_files) + (" only" if ep.identities_only else ""))
            text = "; ".join(parts)
        elif name:
            text = f"{name} is not in ~/.ssh/config any more: connecting will fail until it is back."
        self.note.setText(text)
        self.note.setVisible(bool(text))
