"""A server's page: where it is, what it runs, its Python and free disk; on `local`, the example
bundles, so a first start is never an empty window."""
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFormLayout, QFrame, QGroupBox, QHBoxLayout, QLabel, QPushButton, QScrollArea,
                               QVBoxLayout, QWidget)

from app.formatting import human_bytes
from app.store.servers import LOCAL, ServerConfig

from app.ui.servers.activity_view import ActivityView
from app.ui.servers.approvals_panel import ApprovalsPanel
from app.ui.servers.engines_panel import EnginesPanel
from app.ui.servers.lock_panel import LockPanel
from app.ui.servers.packages_panel import PackagesPanel
from app.ui.servers.policy_dialog import PolicyDialog
from app.ui.servers.role_gate import RoleGate
from app.ui.errors import ErrorBanner
from app.ui.icons import icon
from app.ui.operations import ServerOp
from app.ui.tasks import CONNECTED

EXAMPLES = Path(__file__).resolve().parents[3] / "resources" / "examples"


class ServerPage(QWidget):
    """Signals:
        deploy_requested(str server, str path): path empty = ask for a bundle
        edit_requested(str server), remove_requested(str server)
    """

    deploy_requested = Signal(str, str)
    edit_requested = Signal(str)
    remove_requested = Signal(str)

    def __init__(self, runner, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.server: ServerConfig | None = None
        self._task = None
        # the rows grew (role, lock, packages, approvals, containers, examples): on a laptop's 768
        # pixels the page scrolls instead of making the whole window taller than the screen
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        content = QWidget()
        scroll.setWidget(content)
        outer.addWidget(scroll)
        layout = QVBoxLayout(content)
        self.title = QLabel()
        self.title.setObjectName("pageTitle")
        self.title.setStyleSheet("font-size: 18pt; font-weight: 600;")
        self.banner = ErrorBanner()
        layout.addWidget(self.title)
        layout.addWidget(self.banner)

        facts = QGroupBox("Server")
        self.form = QFormLayout(facts)
        self.fields = {}
        for key, label in (("where", "Address"), ("environment", "Environment"), ("root", "Berth root"),
                           ("state", "Connection"), ("python", "Python"), ("disk", "Free disk")):
            value = QLabel("—")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.fields[key] = value
            self.form.addRow(label, value)
        self.you = QWidget()
        you = QHBoxLayout(self.you)
        you.setContentsMargins(0, 0, 0, 0)
        self.role_label = QLabel("you: …")
        self.policy_button = QPushButton(icon("edit"), "Policy…")
        self.policy_button.setObjectName("policyButton")
        self.policy_button.setToolTip("Who may do what on this server (the server enforces it)")
        self.policy_button.clicked.connect(self.edit_policy)
        you.addWidget(self.role_label)
        you.addWidget(self.policy_button)
        you.addStretch(1)
        self.form.addRow("Role", self.you)
        self.lock_panel = LockPanel(runner)
        self.lock_panel.broken.connect(self.test_connection)
        self.form.addRow("Lock", self.lock_panel)
        self.packages_panel = PackagesPanel(runner)  # what its pip can install, and from where
        self.form.addRow("Packages", self.packages_panel)
        self.approvals_panel = ApprovalsPanel(runner)  # four eyes: what waits here for a second person
        self.form.addRow("Approvals", self.approvals_panel)
        self.engines_panel = EnginesPanel(runner)  # docker / podman: version, usable by this user
        self.form.addRow("Containers", self.engines_panel)
        layout.addWidget(facts)

        buttons = QHBoxLayout()
        self.deploy_button = QPushButton(icon("deploy"), "Deploy bundle…")
        self.deploy_button.clicked.connect(lambda: self.deploy_requested.emit(self.server.name, ""))
        self.test_button = QPushButton(icon("refresh"), "Test connection")
        self.test_button.clicked.connect(self.test_connection)
        self.edit_button = QPushButton(icon("edit"), "Edit…")
        self.edit_button.clicked.connect(lambda: self.edit_requested.emit(self.server.name))
        self.remove_button = QPushButton(icon("remove"), "Remove…")
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self.server.name))
        for b in (self.deploy_button, self.test_button, self.edit_button, self.remove_button):
            buttons.addWidget(b)
        gated = [("deploy", self.deploy_button), ("policy_grant", self.policy_button)]
        self.policy_dialog: PolicyDialog | None = None
        buttons.addStretch(1)
        layout.addLayout(buttons)

        self.examples = QGroupBox("Example bundles: deploy one to try Berth")
        ex_layout = QVBoxLayout(self.examples)
        for folder in sorted(p for p in EXAMPLES.iterdir() if (p / "berth.toml").exists()) if EXAMPLES.exists() else []:
            row = QHBoxLayout()
            row.addWidget(QLabel(f"<b>{folder.name}</b> — {_description(folder)}"), 1)
            button = QPushButton(icon("deploy"), f"Deploy {folder.name}")
            button.setObjectName(f"deploy-example-{folder.name}")
            button.clicked.connect(lambda _=False, f=folder: self.deploy_requested.emit(LOCAL, str(f)))
            gated.append(("deploy", button))
            row.addWidget(button)
            ex_layout.addLayout(row)
        layout.addWidget(self.examples)
        self.roles = RoleGate(self, self.role_label, gated, owns_enabled=True)
        self.activity = ActivityView(runner)
        layout.addWidget(self.activity, 1)

    def show_server(self, server: ServerConfig, state: tuple[str, str] = ("", "")) -> None:
        changed = self.server is None or self.server.name != server.name
        self.server = server
        self.title.setText(server.name)
        local = server.name == LOCAL
        self.fields["where"].setText(server.describe())
        self.fields["environment"].setText(server.environment or "—")
        self.fields["root"].setText(server.root)
        self.set_state(*state)
        self.edit_button.setVisible(not local)
        self.remove_button.setVisible(not local)
        self.examples.setVisible(local)
        self.activity.show_server(server.name)
        self.roles.show(server.name)
        if changed:
            self.banner.clear()
            self.fields["python"].setText("—")
            self.fields["disk"].setText("—")
            self.test_connection()
            self.packages_panel.show_server(server.name)

    def edit_policy(self) -> None:
        """The policy editor (admins: the button is disabled for others, and the server refuses them)."""
        self.policy_dialog = PolicyDialog(self.runner, self.server.name, self)
        self.policy_dialog.saved.connect(lambda _server: self.roles.forget())
        self.policy_dialog.open()

    def set_state(self, state: str, detail: str = "") -> None:
        self.fields["state"].setText(state + (f": {detail}" if detail and state != CONNECTED else ""))

    def test_connection(self) -> None:
        name = self.server.name
        self.test_button.setEnabled(False)
        self._task = (ServerOp(self, name, f"hello {name}", lambda ctx: ctx.transport.hello())
                      .ended(lambda: self.test_button.setEnabled(True))
                      .only_if(lambda: self.server is not None and self.server.name == name)
                      .success(lambda info: self._show_info(name, info))
                      .with_banner(self.banner, "Cannot reach the server: ").run())

    def _show_info(self, name: str, info: dict) -> None:
        self.banner.clear()
        self.fields["python"].setText(f"{info['python']} ({info['machine']}, {info['libc']})")
        self.fields["disk"].setText(f"{human_bytes(info['disk_free'])} of {human_bytes(info['disk_total'])}")
        self.fields["root"].setText(info["root"])
        self.lock_panel.show_lock(name, info.get("lock") or {})
        self.approvals_panel.refresh(name)
        self.engines_panel.refresh(name)


def _description(folder: Path) -> str:
    import tomllib

    try:
        return tomllib.loads((folder / "berth.toml").read_text())["model"].get("description", "")[:90]
    except (OSError, ValueError, KeyError):
        return ""
