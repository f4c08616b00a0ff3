"""Asking the operator about a server's host key: never accepted silently.

An unknown key shows its SHA256 fingerprint and how to check it on the server; Refuse is the
default. A changed key is a red warning with no default button at all: the operator types the
server's name to enable "Forget the old key and trust the new one"."""
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (QDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QVBoxLayout)

from app.remote.errors import HostKeyChanged

from app.ui.operations import BackgroundOp

CHECK_COMMAND = "ssh-keygen -l -E sha256 -f /etc/ssh/ssh_host_*.pub"


def _mono_label(text: str, name: str = "") -> QLabel:
    label = QLabel(text)
    label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse |
                                  Qt.TextInteractionFlag.TextSelectableByKeyboard)
    if name:
        label.setObjectName(name)
    return label


class HostKeyDialog(QDialog):
    """Unknown or changed host key of `server`. After `finished`, `trusted_fingerprint` is the
    fingerprint the operator chose to trust, or None (refused or closed).

    `runner` (optional): a TaskRunner, so forgetting a changed key runs off the GUI thread.
    `config` (optional): the ServerConfig being added or edited (its host and port are the ones
    whose old key is forgotten when it is not saved yet).
    """

    def __init__(self, server: str, error, parent=None, runner=None, config=None):
        super().__init__(parent)
        self.server = server
        self.error = error
        self.runner = runner
        self.config = config
        self.trusted_fingerprint: str | None = None
        self.changed = isinstance(error, HostKeyChanged)
        self._task = None
        self._closed = False
        self.setModal(True)
        self.setWindowTitle(f"Host key CHANGED: {server}" if self.changed else f"Unknown host key: {server}")
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        if self.changed:
            self._build_changed(layout)
        else:
            self._build_unknown(layout)

    # -- unknown key --------------------------------------------------------------------------
    def _build_unknown(self, layout: QVBoxLayout) -> None:
        e = self.error
        intro = QLabel(f"Berth has never connected to <b>{self.server}</b> before. Before anything is sent "
                       f"to it, check that the key below really is this server's.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        form.addRow("Server:", QLabel(self.server))
        form.addRow("Address:", _mono_label(getattr(e, "host", "")))
        form.addRow("Key type:", _mono_label(getattr(e, "key_type", "")))
        self.fingerprint_label = _mono_label(getattr(e, "fingerprint", ""), "fingerprintLabel")
        bold = QFont(self.fingerprint_label.font())
        bold.setBold(True)
        self.fingerprint_label.setFont(bold)
        form.addRow("Fingerprint:", self.fingerprint_label)
        layout.addLayout(form)
        how = QLabel("To check it, run this on the server (or ask its administrator) and compare:")
        how.setWordWrap(True)
        layout.addWidget(how)
        layout.addWidget(_mono_label(CHECK_COMMAND, "checkCommandLabel"))
        layout.addStretch(1)
        row = QHBoxLayout()
        row.addStretch(1)
        self.refuse_button = QPushButton("Refuse")
        self.refuse_button.setObjectName("refuseButton")
        self.trust_button = QPushButton("Trust this key")
        self.trust_button.setObjectName("trustButton")
        self.trust_button.setAutoDefault(False)
        self.refuse_button.setDefault(True)
        self.refuse_button.clicked.connect(self.reject)
        self.trust_button.clicked.connect(self._trust)
        row.addWidget(self.trust_button)
        row.addWidget(self.refuse_button)
        layout.addLayout(row)
        self.refuse_button.setFocus()

    def _trust(self) -> None:
        self.trusted_fingerprint = self.error.fingerprint
        self.accept()

    # -- changed key --------------------------------------------------------------------------
    def _build_changed(self, layout: QVBoxLayout) -> None:
        e = self.error
        warning = QLabel(
            f"<b>WARNING: the host key of {self.server} has CHANGED.</b><br>"
            f"Someone may be intercepting the connection (a man-in-the-middle attack), or the server "
            f"was reinstalled. Nothing was sent to it.")
        warning.setObjectName("warningLabel")
        warning.setWordWrap(True)
        warning.setStyleSheet("QLabel#warningLabel { background: #b3261e; color: white; padding: 10px;"
                              " border-radius: 4px; }")
        layout.addWidget(warning)
        form = QFormLayout()
        form.addRow("Address:", _mono_label(getattr(e, "host", "")))
        form.addRow("Known key:", _mono_label(getattr(e, "expected", ""), "expectedLabel"))
        self.fingerprint_label = _mono_label(f"{getattr(e, 'key_type', '')} {getattr(e, 'fingerprint', '')}",
                                             "fingerprintLabel")
        self.fingerprint_label.setStyleSheet("color: #b3261e; font-weight: bold;")
        form.addRow("Now offered:", self.fingerprint_label)
        layout.addLayout(form)
        how = QLabel("Only if you know why the key changed: check the new key on the server with")
        how.setWordWrap(True)
        layout.addWidget(how)
        layout.addWidget(_mono_label(CHECK_COMMAND, "checkCommandLabel"))
        confirm = QLabel(f"then type the server's name, <b>{self.server}</b>, to confirm:")
        confirm.setWordWrap(True)
        layout.addWidget(confirm)
        self.confirm_edit = QLineEdit()
        self.confirm_edit.setObjectName("confirmNameEdit")
        self.confirm_edit.setPlaceholderText(f"type {self.server} to confirm")
        self.confirm_edit.textChanged.connect(self._confirm_changed)
        layout.addWidget(self.confirm_edit)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.hide()
        layout.addWidget(self.status_label)
        row = QHBoxLayout()
        row.addStretch(1)
        self.forget_button = QPushButton("Forget the old key and trust the new one")
        self.forget_button.setObjectName("forgetAndTrustButton")
        self.forget_button.setEnabled(False)
        self.forget_button.clicked.connect(self._forget_and_trust)
        self.refuse_button = QPushButton("Refuse")
        self.refuse_button.setObjectName("refuseButton")
        self.refuse_button.clicked.connect(self.reject)
        row.addWidget(self.forget_button)
        row.addWidget(self.refuse_button)
        layout.addLayout(row)
        for button in (self.forget_button, self.refuse_button):  # no default: Enter never decides
            button.setAutoDefault(False)
            button.setDefault(False)
        self.confirm_edit.setFocus()

    def _confirm_changed(self, text: str) -> None:
        self.forget_button.setEnabled(text.strip() == self.server and self._task is None)

    def _forget_and_trust(self) -> None:
        if self.confirm_edit.text().strip() != self.server or self._task is not None:
            return
        self.forget_button.setEnabled(False)
        self.confirm_edit.setEnabled(False)
        server, config = self.server, self.config
        if self.runner is None:
            from app.workspace import Workspace

            try:
                Workspace().forget_host_key(server, config)
            except Exception as e:  # noqa: BLE001 - shown to the operator
                self._forget_failed(e)
                return
            self._forgotten(None)
            return
        self._task = (BackgroundOp(self, f"forget host key of {server}",
                                   lambda ctx: ctx.workspace.forget_host_key(server, config))
                      .success(self._forgotten).failure(self._forget_failed).run())

    def _forgotten(self, _n) -> None:
        self._task = None
        if self._closed:  # refused or closed meanwhile: the old key is gone, the new one not trusted
            return
        self.trusted_fingerprint = self.error.fingerprint
        self.accept()

    def _forget_failed(self, error) -> None:
        from app.ui.errors import summary

        self._task = None
        if self._closed:
            return
        self.confirm_edit.setEnabled(True)
        self._confirm_changed(self.confirm_edit.text())
        self.status_label.setText(f"Could not forget the old key: {summary(error)}")
        self.status_label.setStyleSheet("color: #b3261e;")
        self.status_label.show()

    # -- common -------------------------------------------------------------------------------
    def keyPressEvent(self, event):
        if self.changed and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()  # Enter never trusts a changed key (and never refuses by accident)
            return
        super().keyPressEvent(event)

    def done(self, result: int) -> None:
        self._closed = True
        if result != QDialog.DialogCode.Accepted:
            self.trusted_fingerprint = None
        super().done(result)
