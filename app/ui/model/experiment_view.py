"""A model's Experiment tab: pick version B, the mode and its settings, start; while it runs, both
versions side by side (the comparison with its verdict, the canary's step, their training metadata,
their latency and traffic on one time axis) and the two buttons that end it. The view only shows and
asks; the page runs the calls (`berth experiment start/status/stop` on the server's thread).

Signals:
    start_requested(dict): {"b", "mode": "ab"|"canary"|"shadow", and the mode's settings}, the same
        names as `berth experiment start`'s options
    stop_requested(bool promote): end it, B becoming current when `promote`
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QRadioButton, QSpinBox, QStackedWidget,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.ui.icons import icon
from app.ui.model.experiment_graphs import ExperimentGraphs
from app.ui.model.experiment_intervals import ExperimentIntervals
from app.ui.model.releases_view import number

ROWS = [("requests", "Requests"), ("errors", "Errors"), ("rejected", "Rejected inputs"), ("p50_ms", "p50 (ms)"),
        ("p95_ms", "p95 (ms)"), ("p99_ms", "p99 (ms)"), ("accuracy", "Accuracy"), ("mae", "Mean abs. error"),
        ("labelled", "Labelled")]
ACTIVE = ("running", "complete")  # complete: a canary at 100 %, waiting for promote or stop
MODES = (("ab", "A/B: fixed share"), ("canary", "Canary: in steps, within limits"), ("shadow", "Shadow: B only listens"))


def parse_steps(text: str) -> list[int]:
    """"5, 25,50,100" -> [5, 25, 50, 100]; ValueError saying what is wrong."""
    try:
        steps = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise ValueError("canary steps are whole percentages separated by commas, e.g. 5,25,50,100") from None
    if not steps or steps != sorted(set(steps)) or steps[0] <= 0 or steps[-1] != 100:
        raise ValueError("canary steps must increase and end at 100, e.g. 5,25,50,100")
    return steps


class ExperimentView(QWidget):
    start_requested = Signal(dict)
    stop_requested = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.busy = False  # a start or stop under way
        self.status: dict | None = None
        self.releases: list[dict] = []
        self.stack = QStackedWidget()
        self.stack.addWidget(self._build_form())
        self.stack.addWidget(self._build_running())
        layout = QVBoxLayout(self)
        layout.addWidget(self.stack)
        self.set_busy(False)

    # -- the form ----------------------------------------------------------------------------------
    def _build_form(self) -> QWidget:
        page = QWidget()
        self.intro = QLabel("Compare a second release (B) with the current one (A) on real traffic, on the "
                            "model's stable port. It runs on the server: closing Berth does not stop it.")
        self.intro.setWordWrap(True)
        self.b_version = QComboBox()
        self.b_version.setObjectName("experimentB")
        self.mode_group = QButtonGroup(self)
        modes = QHBoxLayout()
        self.mode_buttons = {}
        for key, text in MODES:
            b = QRadioButton(text)
            b.setObjectName(f"mode_{key}")
            self.mode_group.addButton(b)
            self.mode_buttons[key] = b
            modes.addWidget(b)
            b.toggled.connect(self._mode_changed)
        self.weight = QDoubleSpinBox()
        self.weight.setRange(0.0, 1.0)
        self.weight.setSingleStep(0.05)
        self.weight.setValue(0.1)
        self.sticky = QLineEdit()
        self.sticky.setPlaceholderText("e.g. X-Customer-Id (optional: one customer always sees one version)")
        self.steps = QLineEdit("5,25,50,100")
        self.step_requests = QSpinBox()
        self.step_requests.setRange(1, 10_000_000)
        self.step_requests.setValue(500)
        self.step_minutes = QSpinBox()
        self.step_minutes.setRange(0, 10_080)
        self.step_minutes.setValue(10)
        self.max_error_rate = QDoubleSpinBox()
        self.max_error_rate.setDecimals(3)
        self.max_error_rate.setRange(0.0, 1.0)
        self.max_error_rate.setValue(0.01)
        self.max_p95 = QDoubleSpinBox()
        self.max_p95.setRange(0.0, 600_000.0)
        self.max_p95.setValue(200.0)
        self.settings = QFormLayout()
        self.settings.addRow("B's share of requests", self.weight)
        self.settings.addRow("Sticky header", self.sticky)
        self.settings.addRow("Canary steps (% to B)", self.steps)
        self.settings.addRow("Each step at least (requests)", self.step_requests)
        self.settings.addRow("Each step at least (minutes)", self.step_minutes)
        self.settings.addRow("B's error rate at most", self.max_error_rate)
        self.settings.addRow("B's p95 at most (ms)", self.max_p95)
        box = QGroupBox("Settings")
        box.setLayout(self.settings)
        self.form_error = QLabel()
        self.form_error.setObjectName("experimentFormError")
        self.form_error.setStyleSheet("color: #d93025")
        self.start_button = QPushButton(icon("deploy"), "Start experiment")
        self.start_button.setObjectName("startExperiment")
        self.start_button.clicked.connect(self._start)
        self.last = QLabel()
        self.last.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Version B", self.b_version)
        layout = QVBoxLayout(page)
        layout.addWidget(self.intro)
        layout.addLayout(form)
        layout.addLayout(modes)
        layout.addWidget(box)
        layout.addWidget(self.form_error)
        layout.addWidget(self.start_button)
        layout.addWidget(self.last)
        layout.addStretch(1)
        self.mode_buttons["canary"].setChecked(True)
        return page

    def _mode_changed(self, *_args) -> None:
        mode = self.mode()
        shown = {"ab": (0, 1), "canary": (2, 3, 4, 5, 6), "shadow": ()}[mode]
        for row in range(self.settings.rowCount()):
            self.settings.setRowVisible(row, row in shown)

    def mode(self) -> str:
        return next((k for k, b in self.mode_buttons.items() if b.isChecked()), "canary")

    def request(self) -> dict:
        """What the form asks for; ValueError with the one line to show."""
        b = self.b_version.currentData()
        if not b:
            raise ValueError("deploy a second release first: an experiment needs two versions on the server")
        mode = self.mode()
        req = {"b": b, "mode": mode}
        if mode == "ab":
            req["weight"] = round(self.weight.value(), 4)
            if self.sticky.text().strip():
                req["sticky_header"] = self.sticky.text().strip()
        elif mode == "canary":
            req.update(canary=parse_steps(self.steps.text()), step_requests=self.step_requests.value(),
                       step_minutes=self.step_minutes.value(), max_error_rate=self.max_error_rate.value(),
                       max_p95_ms=self.max_p95.value())
        return req

    def _start(self) -> None:
        try:
            req = self.request()
        except ValueError as e:
            self.form_error.setText(str(e))
            return
        self.form_error.setText("")
        self.start_requested.emit(req)

    # -- while it runs --------------------------------------------------------------------------
    def _build_running(self) -> QWidget:
        page = QWidget()
        self.headline = QLabel()
        self.headline.setObjectName("experimentHeadline")
        self.headline.setWordWrap(True)
        self.verdict = QLabel()
        self.verdict.setObjectName("experimentVerdict")
        self.verdict.setWordWrap(True)
        self.intervals = ExperimentIntervals()  # each comparison's interval, the requests still needed
        self.table = QTableWidget(len(ROWS), 2)
        self.table.setObjectName("experimentTable")
        self.table.setVerticalHeaderLabels([label for _k, label in ROWS])
        self.training = QTableWidget(0, 2)
        self.training.setObjectName("experimentTraining")
        for t in (self.table, self.training):
            t.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
            t.horizontalHeader().setStretchLastSection(True)
        self.graphs = ExperimentGraphs()
        self.promote_button = QPushButton(icon("deploy"), "Promote B")
        self.promote_button.setObjectName("promoteB")
        self.promote_button.setToolTip("B becomes the current release and the experiment ends")
        self.promote_button.clicked.connect(lambda: self.stop_requested.emit(True))
        self.stop_button = QPushButton(icon("stop"), "Stop (keep A)")
        self.stop_button.setObjectName("stopExperiment")
        self.stop_button.clicked.connect(lambda: self.stop_requested.emit(False))
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.promote_button)
        tables = QHBoxLayout()
        tables.addWidget(self.table, 1)
        tables.addWidget(self.training, 1)
        layout = QVBoxLayout(page)
        layout.addWidget(self.headline)
        layout.addWidget(self.verdict)
        layout.addLayout(tables, 2)
        layout.addWidget(self.intervals)
        layout.addWidget(self.graphs, 3)
        layout.addLayout(buttons)
        return page

    # -- what the page tells it ------------------------------------------------------------------
    def set_releases(self, releases: list[dict]) -> None:
        """The model's releases (as the agent lists them): B may be any but the current one."""
        self.releases = releases
        chosen = self.b_version.currentData()
        self.b_version.clear()
        for r in reversed(releases):
            if not r.get("current"):
                self.b_version.addItem(r["version"], r["version"])
        at = self.b_version.findData(chosen)
        if at >= 0:
            self.b_version.setCurrentIndex(at)

    def show_status(self, status: dict | None) -> None:
        """`berth experiment status --json` (None or a state other than running: the form)."""
        self.status = status
        running = bool(status) and status.get("state") in ACTIVE
        self.stack.setCurrentIndex(1 if running else 0)
        if not running:
            self.graphs.clear()
            if status:
                self.last.setText(f"Last experiment: {status.get('mode')} of {status['a']['version']} and "
                                  f"{status['b']['version']}, {status.get('state')}. "
                                  + ((status.get("verdict") or {}).get("text") or ""))
            return
        a, b = status["a"], status["b"]
        step = f", B at {b.get('weight', 0) * 100:g} %" if status.get("mode") != "shadow" else ", B only listens"
        self.headline.setText(f"<b>{status.get('mode')}</b> since {status.get('started', '?')}: "
                              f"A = {a['version']}, B = {b['version']}{step}")
        verdict = status.get("verdict") or {}
        agreement = status.get("agreement")
        self.verdict.setText("<b>Verdict</b>: " + (verdict.get("text") or "not computed yet")
                             + (f" · agreement {_agreement(agreement)}" if agreement else ""))
        self.intervals.show_verdict(verdict)
        self.table.setHorizontalHeaderLabels([f"A {a['version']}", f"B {b['version']}"])
        for row, (key, _label) in enumerate(ROWS):
            for col, side in enumerate((a, b)):
                self.table.setItem(row, col, QTableWidgetItem(number(side.get(key))))
        self._fill_training(a["version"], b["version"])
        self.graphs.add(status)

    def _fill_training(self, va: str, vb: str) -> None:
        by = {r["version"]: ((r.get("manifest") or {}).get("training") or {}) for r in self.releases}
        ta, tb = by.get(va, {}), by.get(vb, {})
        rows = []
        for group in ("metrics", "params"):
            ga, gb = ta.get(group) or {}, tb.get(group) or {}
            rows += [(f"{group[:-1]} {k}", ga.get(k), gb.get(k)) for k in list(ga) + [k for k in gb if k not in ga]]
        rows += [("data set", ta.get("dataset"), tb.get("dataset")), ("code commit", ta.get("code_commit"), tb.get("code_commit"))]
        self.training.setRowCount(len(rows))
        self.training.setHorizontalHeaderLabels([f"A {va}", f"B {vb}"])
        self.training.setVerticalHeaderLabels([name for name, _a, _b in rows])
        for row, (_name, x, y) in enumerate(rows):
            for col, v in enumerate((x, y)):
                item = QTableWidgetItem(number(v))
                if x != y:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.training.setItem(row, col, item)

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        for w in (self.start_button, self.promote_button, self.stop_button):
            w.setEnabled(not busy)


def _agreement(a: dict) -> str:
    parts = []
    if a.get("equal") is not None:
        parts.append(f"{a['equal'] * 100:.1f} % equal")
    if a.get("mean_abs_diff") is not None:
        parts.append(f"mean |A−B| {a['mean_abs_diff']:.4g}, max {a.get('max_abs_diff', 0):.4g}")
    return ", ".join(parts) or "—"
