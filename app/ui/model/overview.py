"""The model at a glance: the page header (name, version, state, endpoint, uptime and the Roll back /
Stop / Start buttons) and what the bundle says about the current release: description, authors,
and how it was trained (data set and its hash, code commit, parameters, metrics)."""
from datetime import datetime, timezone

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (QFormLayout, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QScrollArea, QVBoxLayout, QWidget)

from app.ui.icons import icon
from app.ui.model.releases_view import local_time, number, who

EMPTY = "—"
STATE_COLORS = {"running": "#1b7f3b", "stopped": "#5f6368", "failed": "#b3261e", "not deployed": "#8a5a00"}


def uptime(started_at: str | None, now: datetime | None = None) -> str:
    if not started_at:
        return ""
    try:
        start = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    s = max(0, int(((now or datetime.now(timezone.utc)) - start).total_seconds()))
    d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if d:
        return f"{d} d {h} h"
    if h:
        return f"{h} h {m:02d} min"
    return f"{m} min {s % 60:02d} s" if m else f"{s} s"


class ModelHeader(QWidget):
    """Name, version, state (colored), endpoint, uptime, the action buttons and the progress of an
    action.

    Signals:
        rollback_requested(), stop_requested(), start_requested(): the operator clicked the button
    """

    rollback_requested = Signal()
    stop_requested = Signal()
    start_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.status: dict = {}
        self.title = QLabel()
        self.title.setObjectName("pageTitle")
        self.title.setStyleSheet("font-size: 18pt; font-weight: 600;")
        self.version_label = QLabel()
        self.version_label.setObjectName("versionLabel")
        self.version_label.setStyleSheet("font-size: 14pt;")
        self.state_label = QLabel()
        self.state_label.setObjectName("stateLabel")
        self.endpoint_label = QLabel()
        self.endpoint_label.setObjectName("endpointLabel")
        self.endpoint_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.uptime_label = QLabel()
        self.uptime_label.setObjectName("uptimeLabel")
        self.rollback_button = QPushButton(icon("rollback"), "Roll back…")
        self.rollback_button.clicked.connect(self.rollback_requested)
        self.stop_button = QPushButton(icon("stop"), "Stop")
        self.stop_button.clicked.connect(self.stop_requested)
        self.start_button = QPushButton(icon("start"), "Start")
        self.start_button.clicked.connect(self.start_requested)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.message = QLabel()
        self.message.setObjectName("changeMessage")
        self.role_label = QLabel()  # "you: deployer (alice)", filled by the page's RoleGate
        self.role_label.setObjectName("modelRoleLabel")

        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addWidget(self.version_label)
        head.addWidget(self.state_label)
        head.addStretch(1)
        for b in (self.rollback_button, self.stop_button, self.start_button):
            head.addWidget(b)
        facts = QHBoxLayout()
        facts.addWidget(self.endpoint_label)
        facts.addSpacing(24)
        facts.addWidget(self.uptime_label)
        facts.addSpacing(24)
        facts.addWidget(self.role_label)
        facts.addStretch(1)
        facts.addWidget(self.message)
        facts.addWidget(self.progress)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(head)
        layout.addLayout(facts)
        self.clock = QTimer(self)
        self.clock.setInterval(1000)
        self.clock.timeout.connect(self._show_uptime)

    def set_status(self, server: str, status: dict, rollback_to: str | None, busy: bool) -> None:
        self.status = dict(status)
        state = status.get("state") or "unknown"
        self.title.setText(status.get("model") or "")
        self.version_label.setText(status.get("version") or "")
        self.state_label.setText(state)
        self.state_label.setStyleSheet(f"background: {STATE_COLORS.get(state, '#5f6368')}; color: white; "
                                       f"border-radius: 4px; padding: 2px 8px; font-weight: 600;")
        port = status.get("port")
        self.endpoint_label.setText(f"Endpoint: 127.0.0.1:{port} on {server}" if port and state == "running"
                                    else f"Endpoint: not serving on {server}")
        self._show_uptime()
        self.rollback_button.setEnabled(not busy and bool(rollback_to))
        self.rollback_button.setToolTip(f"Make {rollback_to} current again (the release deployed before "
                                        f"{status.get('version')})" if rollback_to else "No earlier release to roll back to")
        self.stop_button.setEnabled(not busy and state == "running")
        self.start_button.setEnabled(not busy and bool(status.get("version")) and state != "running")
        self.progress.setVisible(busy)
        if busy:
            self.progress.setRange(0, 0)

    def show_progress(self, p) -> None:
        """A Progress value of the running action."""
        if p.line is not None:
            return
        self.message.setText(f"{p.label}{': ' + p.message if p.message else ''}")
        if p.done is not None and p.total:
            self.progress.setRange(0, int(p.total))
            self.progress.setValue(int(p.done))
        else:
            self.progress.setRange(0, 0)

    def _show_uptime(self) -> None:
        up = uptime(self.status.get("started_at")) if self.status.get("state") == "running" else ""
        self.uptime_label.setText(f"Up {up}" if up else "")

    def showEvent(self, event):
        super().showEvent(event)
        self.clock.start()

    def hideEvent(self, event):
        super().hideEvent(event)
        self.clock.stop()


def limits(manifest: dict) -> str:
    """A container release's memory and CPU limits as the bundle gives them."""
    parts = ([f"memory {manifest['memory']}"] if manifest.get("memory") else []) + (
        [f"{number(manifest['cpus'])} CPU(s)"] if manifest.get("cpus") else [])
    return ", ".join(parts) or "none in the bundle (the server's container settings apply)"


def _value_label(mono: bool = False) -> QLabel:
    label = QLabel(EMPTY)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    if mono:
        label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    return label


def _text(value) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number(value)
    return str(value)


class KeyValues(QGroupBox):
    """A titled list of key: value rows, rebuilt on each `set_values`."""

    def __init__(self, title: str, parent=None):
        super().__init__(title, parent)
        self.form = QFormLayout(self)
        self.values: dict[str, str] = {}
        self.set_values({})

    def set_values(self, values: dict) -> None:
        values = values if isinstance(values, dict) else {}
        while self.form.rowCount():
            self.form.removeRow(0)
        self.values = {str(k): _text(v) for k, v in values.items()}
        for key, text in self.values.items():
            label = _value_label()
            label.setText(text)
            self.form.addRow(f"{key}:", label)
        if not values:
            self.form.addRow(QLabel("None recorded in the bundle's manifest."))


class ModelOverview(QWidget):
    """Fed with the current release (an entry of the agent's `releases`) by the model page."""

    FIELDS = (("description", "Description", False), ("authors", "Authors", False),
              ("entrypoint", "Entry point", True), ("sha256", "Bundle sha256", True),
              ("deployed", "Deployed", False), ("dataset", "Training data set", True),
              ("dataset_sha256", "Data set sha256", True), ("code_commit", "Code commit", True),
              ("runtime", "Runtime", False), ("image", "Image", True), ("limits", "Limits", False))
    CONTAINER_ONLY = ("image", "limits")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.fields: dict[str, QLabel] = {}
        about = QGroupBox("Current release")
        self.form = form = QFormLayout(about)
        for key, title, mono in self.FIELDS:
            self.fields[key] = _value_label(mono)
            self.fields[key].setObjectName(f"overview-{key}")
            form.addRow(title, self.fields[key])
        self.params = KeyValues("Training parameters")
        self.metrics = KeyValues("Training metrics")
        side = QHBoxLayout()
        side.addWidget(self.params, 1)
        side.addWidget(self.metrics, 1)

        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.addWidget(about)
        layout.addLayout(side)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(inner)
        QVBoxLayout(self).addWidget(scroll)
        self.outer = self.layout()
        self.outer.setContentsMargins(0, 0, 0, 0)

    def set_release(self, release: dict | None) -> None:
        release = release or {}
        manifest = release.get("manifest") or {}
        training = manifest.get("training") or {}
        deployed = local_time(release.get("deployed_at"))
        if release.get("deployed_by"):
            deployed += f" by {who(release.get('deployed_by'))}"
        values = {
            "description": manifest.get("description"), "authors": manifest.get("authors"),
            "entrypoint": manifest.get("entrypoint"), "sha256": release.get("sha256"), "deployed": deployed,
            "dataset": training.get("dataset"), "dataset_sha256": training.get("dataset_sha256"),
            "code_commit": training.get("code_commit"), "runtime": manifest.get("runtime") or "venv",
            "image": release.get("image"), "limits": limits(manifest),
        }
        for key, label in self.fields.items():
            label.setText(_text(values.get(key)))
        container = values["runtime"] == "container"
        for key in self.CONTAINER_ONLY:  # a virtualenv release has neither
            self.form.setRowVisible(self.fields[key], container)
        self.params.set_values(training.get("params") or {})
        self.metrics.set_values(training.get("metrics") or {})

    def text(self, key: str) -> str:
        return self.fields[key].text()
