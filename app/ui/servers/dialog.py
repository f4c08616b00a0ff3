"""Add or edit a server: where it is, how to log in, where Berth keeps its files there.

"Test connection" and "Save" connect for real, in the background (the dialog stays responsive).
Passwords and key passphrases go to the system keyring only; without a secure keyring they are
not stored at all, and the dialog says so."""
import getpass
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from app.formatting import human_bytes
from app.remote.credentials import NoSecureKeyring
from app.remote.errors import HostKeyChanged, UnknownHostKey
from app.remote.server_check import SAVE, TEST, check_server, secret_changes
from app.store.servers import LOCAL, ServerConfig
from app.workspace import SERVER_NAME_RE

from app.ui.errors import ErrorBanner
from app.ui.operations import BackgroundOp
from app.ui.servers.alias_picker import AliasPicker, suggested_name
from app.ui.servers.hostkey_dialog import HostKeyDialog

AGENT, KEY_FILE, PASSWORD = "agent", "key", "password"
ENVIRONMENTS = ("development", "staging", "production")
RED = "#b3261e"  # a field's problem


def describe_facts(info: dict) -> str:
    where = " ".join(x for x in (info.get("platform", ""), info.get("machine", "")) if x)
    lines = [f"Connected: Python {info.get('python', '?')}" + (f" on {where}" if where else "")]
    if "disk_free" in info:
        disk = f"Free disk: {human_bytes(info['disk_free'])}"
        if info.get("disk_total"):
            disk += f" of {human_bytes(info['disk_total'])}"
        lines.append(disk)
    if info.get("root"):
        lines.append(f"Root: {info['root']}")
    return "\n".join(lines)


def no_keyring_text(what: str) -> str:
    return (f"No secure system keyring is available on this computer, so Berth cannot keep the {what} "
            f"(it never writes secrets anywhere else). Use an SSH agent (ssh-add) instead, or set up a "
            f"keyring such as GNOME Keyring, KWallet, the macOS Keychain or Windows Credential Manager.")


class ServerDialog(QDialog):
    """Signals:
        saved(str name): the server was tested and saved
    """

    saved = Signal(str)

    def __init__(self, runner, existing: ServerConfig | None = None, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.existing = existing
        self.setWindowTitle(f"Edit server {existing.name}" if existing else "Add server")
        self.setMinimumWidth(520)
        self.task = None
        self.mode = TEST
        self.pending: ServerConfig | None = None
        self.secret_kinds: set[str] = set()
        self.names_task = None
        self.host_key_dialog: HostKeyDialog | None = None
        self._taken: set[str] = set()
        self._touched: set[str] = set()
        self._closed = False
        self._build()
        self._load(existing)
        self._auth_changed()
        self._validate()
        self.names_task = BackgroundOp(self, "server names", lambda ctx: [s.name for s in ctx.workspace.servers.list()]
                                       ).success(self._names_loaded).run()

    # -- building -----------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.fields = QWidget()
        form = self.form = QFormLayout(self.fields)
        form.setContentsMargins(0, 0, 0, 0)
        self.errors: dict[str, QLabel] = {}

        def edit(name, placeholder=""):
            w = QLineEdit()
            w.setObjectName(name)
            w.setPlaceholderText(placeholder)
            return w

        self.alias_picker = AliasPicker(self.runner, self.existing.ssh_alias if self.existing else "")
        self.alias_picker.chosen.connect(self._alias_chosen)
        self.alias_combo = self.alias_picker.combo
        self.name_edit = edit("nameEdit", "e.g. gpu-1 (a-z, 0-9, . _ -)")
        self.host_edit = edit("hostEdit", "host name or IP address")
        self.port_spin = QSpinBox()
        self.port_spin.setObjectName("portSpin")
        self.port_spin.setRange(1, 65535)
        self.port_spin.setValue(22)
        self.user_edit = edit("userEdit", "the SSH user on the server")
        self.auth_combo = QComboBox()
        self.auth_combo.setObjectName("authCombo")
        self.auth_combo.addItem("SSH agent (and ~/.ssh keys)", AGENT)
        self.auth_combo.addItem("Key file", KEY_FILE)
        self.auth_combo.addItem("Password", PASSWORD)
        self.key_edit = edit("keyEdit", "path to a private key, e.g. ~/.ssh/id_ed25519")
        browse = QPushButton("Browse…")
        browse.setObjectName("browseButton")
        browse.setAutoDefault(False)
        browse.clicked.connect(self._browse_key)
        self.key_row = QWidget()
        row = QHBoxLayout(self.key_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.key_edit, 1)
        row.addWidget(browse)
        self.passphrase_edit = edit("passphraseEdit", "only if the key is encrypted (kept in the system keyring)")
        self.passphrase_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit = edit("passwordEdit", "kept in the system keyring, never on disk")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.root_edit = edit("rootEdit", "~/berth")
        self.env_combo = QComboBox()
        self.env_combo.setObjectName("envCombo")
        self.env_combo.setEditable(True)
        self.env_combo.addItems(ENVIRONMENTS)
        self.env_combo.lineEdit().setPlaceholderText("e.g. production (optional)")

        form.addRow("From ~/.ssh/&config:", self.alias_picker)
        form.labelForField(self.alias_picker).setBuddy(self.alias_combo)
        for key, label, widget in (("name", "&Name:", self.name_edit), ("host", "&Host:", self.host_edit),
                                   ("port", "&Port:", self.port_spin), ("user", "&User:", self.user_edit),
                                   ("auth", "&Authentication:", self.auth_combo),
                                   ("key", "&Key file:", self.key_row),
                                   ("passphrase", "Key pass&phrase:", self.passphrase_edit),
                                   ("password", "Pass&word:", self.password_edit),
                                   ("root", "&Root folder:", self.root_edit),
                                   ("env", "&Environment:", self.env_combo)):
            form.addRow(label, widget)
            label_widget = form.labelForField(widget)
            if isinstance(label_widget, QLabel):
                label_widget.setBuddy(self.key_edit if widget is self.key_row else widget)
            error = QLabel()
            error.setObjectName(f"{key}Error")
            error.setStyleSheet(f"color: {RED};")
            error.setWordWrap(True)
            form.addRow("", error)
            form.setRowVisible(error, False)
            self.errors[key] = error
        layout.addWidget(self.fields)

        busy_row = QHBoxLayout()
        self.busy_bar = QProgressBar()
        self.busy_bar.setObjectName("busyBar")
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.setMaximumHeight(12)
        self.busy_bar.hide()
        busy_row.addWidget(self.busy_bar)
        layout.addLayout(busy_row)
        self.result = ErrorBanner(dismissable=False)  # what the test or save says, Details… for a failure
        self.result.label.setObjectName("resultLabel")
        self.result.action_button.setObjectName("detailsButton")
        layout.addWidget(self.result)
        layout.addStretch(1)

        buttons = QHBoxLayout()
        self.test_button = QPushButton("&Test connection")
        self.test_button.setObjectName("testButton")
        self.test_button.setAutoDefault(False)
        self.test_button.clicked.connect(lambda: self.start(TEST))
        self.save_button = QPushButton("&Save")
        self.save_button.setObjectName("saveButton")
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(lambda: self.start(SAVE))
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setAutoDefault(False)
        self.cancel_button.clicked.connect(self.reject)
        buttons.addWidget(self.test_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.save_button)
        layout.addLayout(buttons)

        for key, widget in (("name", self.name_edit), ("host", self.host_edit), ("user", self.user_edit),
                            ("key", self.key_edit), ("root", self.root_edit), ("password", self.password_edit)):
            widget.textChanged.connect(lambda _t, k=key: self._edited(k))
        self.auth_combo.currentIndexChanged.connect(self._auth_changed)

    def _load(self, s: ServerConfig | None) -> None:
        if s is None:
            try:
                self.user_edit.setText(getpass.getuser())
            except (KeyError, OSError):
                pass
            self.root_edit.setText("~/berth")
            self.env_combo.setEditText("")
            return
        self.name_edit.setText(s.name)
        self.host_edit.setText(s.host)
        self.port_spin.setValue(int(s.port or 22))
        self.user_edit.setText(s.user)
        self.key_edit.setText(s.key_path)
        self.root_edit.setText(s.root)
        self.env_combo.setEditText(s.environment)
        mode = PASSWORD if s.auth == "password" else KEY_FILE if s.key_path else AGENT
        self.auth_combo.setCurrentIndex(self.auth_combo.findData(mode))
        if s.auth == "password":
            self.password_edit.setPlaceholderText("stored in the system keyring: leave empty to keep it")

    # -- fields -------------------------------------------------------------------------------
    def auth_mode(self) -> str:
        return self.auth_combo.currentData()

    def _auth_changed(self, *_):
        mode = self.auth_mode()
        self.form.setRowVisible(self.key_row, mode == KEY_FILE)
        self.form.setRowVisible(self.passphrase_edit, mode == KEY_FILE)
        self.form.setRowVisible(self.password_edit, mode == PASSWORD)
        self._validate()

    def _edited(self, key: str) -> None:
        self._touched.add(key)
        self._validate()

    def _alias_chosen(self, name: str, ep) -> None:
        """The alias's HostName, Port and User go into the fields (still editable: they win)."""
        if ep is None:
            return
        self.host_edit.setText(ep.host)
        self.port_spin.setValue(ep.port)
        self.user_edit.setText(ep.user)
        if not self.name_edit.text().strip():
            self.name_edit.setText(suggested_name(name))
        if self.auth_mode() == KEY_FILE and not self.key_edit.text().strip():
            self.auth_combo.setCurrentIndex(self.auth_combo.findData(AGENT))  # the alias's IdentityFile applies

    def _names_loaded(self, names) -> None:
        self.names_task = None
        self._taken = set(names)
        self._validate()

    def problems(self) -> dict[str, str]:
        out = {}
        name = self.name_edit.text().strip()
        if not name:
            out["name"] = "A name is required."
        elif name == LOCAL:
            out["name"] = "'local' is the built-in server: choose another name."
        elif not SERVER_NAME_RE.fullmatch(name):
            out["name"] = "Use lower-case letters, digits, '.', '_' and '-' (starting with a letter or digit)."
        elif name in self._taken and name != (self.existing.name if self.existing else None):
            out["name"] = f"A server named {name} exists already."
        host = self.host_edit.text().strip()
        if not host:
            out["host"] = "A host is required."
        elif any(c.isspace() for c in host):
            out["host"] = "A host name has no spaces."
        if not 1 <= self.port_spin.value() <= 65535:
            out["port"] = "The port is a number from 1 to 65535."
        if not self.user_edit.text().strip():
            out["user"] = "The SSH user is required."
        mode = self.auth_mode()
        if mode == KEY_FILE and not self.key_edit.text().strip():
            out["key"] = "Choose a private key file."
        if mode == PASSWORD and not self.password_edit.text() and not self._password_stored():
            out["password"] = "Type the password (it is kept in the system keyring)."
        if not self.root_edit.text().strip():
            out["root"] = "A root folder is required (e.g. ~/berth)."
        return out

    def _password_stored(self) -> bool:
        return bool(self.existing and self.existing.auth == "password")

    def _validate(self, show_all: bool = False) -> dict[str, str]:
        problems = self.problems()
        if show_all:
            self._touched.update(problems)
        for key, label in self.errors.items():
            text = problems.get(key, "") if key in self._touched else ""
            label.setText(text)
            self.form.setRowVisible(label, bool(text))
        return problems

    def config(self) -> ServerConfig:
        mode = self.auth_mode()
        key_path = self.key_edit.text().strip() if mode == KEY_FILE else ""
        if key_path.startswith("~"):
            key_path = str(Path(key_path).expanduser())
        kept = {k: getattr(self.existing, k) for k in ("connect_timeout", "auth_timeout", "command_timeout",
                                                         "keepalive")} if self.existing else {}
        return ServerConfig(name=self.name_edit.text().strip(), kind="ssh", host=self.host_edit.text().strip(),
                            port=self.port_spin.value(), user=self.user_edit.text().strip(), key_path=key_path,
                            root=self.root_edit.text().strip(), environment=self.env_combo.currentText().strip(),
                            auth="password" if mode == PASSWORD else "auto",
                            ssh_alias=self.alias_picker.alias(), **kept)

    def _browse_key(self) -> None:
        start = self.key_edit.text().strip() or str(Path.home() / ".ssh")
        dialog = QFileDialog(self, "Choose a private key", start)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(self.key_edit.setText)
        dialog.open()
        self._file_dialog = dialog

    # -- test and save ------------------------------------------------------------------------
    def start(self, mode: str, accept: str | None = None) -> None:
        """Test (TEST) or test and save (SAVE) in the background; `accept` trusts that host key."""
        if self.task is not None:
            return
        problems = self._validate(show_all=True)
        if problems:
            first = next(iter(problems))
            widget = {"name": self.name_edit, "host": self.host_edit, "port": self.port_spin, "user": self.user_edit,
                      "key": self.key_edit, "password": self.password_edit, "root": self.root_edit}[first]
            widget.setFocus()
            self.result.show_message("error", "Please correct the fields marked in red.")
            return
        config = self.config()
        secrets = secret_changes(config, self.existing, self.password_edit.text(), self.passphrase_edit.text())
        replacing = self.existing.name if self.existing else None
        self.mode = mode
        self.pending = config
        self.secret_kinds = secrets.kinds()
        self._set_busy(True, f"Testing the connection to {config.describe()}…" if mode == TEST
                       else f"Testing {config.describe()} and saving {config.name}…")
        self.task = (BackgroundOp(self, f"{mode} server {config.name}",
                                  lambda ctx: check_server(ctx.workspace, mode, config, accept, secrets, replacing))
                     .success(self._succeeded).failure(self._failed).run())

    def _set_busy(self, busy: bool, text: str = "") -> None:
        self.busy_bar.setVisible(busy)
        self.fields.setEnabled(not busy)
        self.test_button.setEnabled(not busy)
        self.save_button.setEnabled(not busy)
        if busy:
            self.result.show_message("info", text)

    def _succeeded(self, info: dict) -> None:
        self.task = None
        self._set_busy(False)
        self.result.show_message("ok", describe_facts(info))
        if self.mode == SAVE:
            self.saved.emit(self.pending.name)
            if not self._closed:
                self.accept()

    def _failed(self, error: BaseException) -> None:
        self.task = None
        self._set_busy(False)
        if isinstance(error, (UnknownHostKey, HostKeyChanged)) and not self._closed:
            self.result.show_message("info", "The server's host key needs your decision…")
            self._ask_host_key(error)
            return
        if isinstance(error, NoSecureKeyring):
            what = " and ".join(sorted(self.secret_kinds)) or "secret"
            self.result.show_message("error", f"{no_keyring_text(what)} Nothing was saved.")
            return
        self.result.show_error(error, "Connection test failed: " if self.mode == TEST else "Not saved: ")

    def _ask_host_key(self, error) -> None:
        config = self.pending
        dialog = self.host_key_dialog = HostKeyDialog(config.name, error, self, runner=self.runner, config=config)
        dialog.finished.connect(self._host_key_answered)
        dialog.open()

    def _host_key_answered(self, _result: int) -> None:
        dialog, self.host_key_dialog = self.host_key_dialog, None
        if dialog is None or self._closed:
            return
        dialog.deleteLater()
        if dialog.trusted_fingerprint:
            self.start(self.mode, accept=dialog.trusted_fingerprint)
        else:
            self.result.show_message("error", "Host key refused: nothing was sent to the server and nothing was saved.")

    def done(self, result: int) -> None:
        self._closed = True
        super().done(result)
