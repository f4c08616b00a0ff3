"""Try the model: a JSON input (pre-filled from the release's input example), Send, the output
pretty-printed and how long the answer took. The request runs on the server's thread. Input the
runner refuses as the wrong shape (its 422) shows the message in the banner and the input example
in the output pane, beside the input that was refused."""
import json

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QPalette
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QSplitter, QVBoxLayout,
                               QWidget)

from app.deploy import queries
from app.errors import INVALID_INPUT, error_code

from app.ui.errors import ErrorBanner
from app.ui.icons import icon
from app.ui.operations import ServerOp

EXPECTED_HEADING = "The input's shape is not what the model expects (see above). Its input example:\n"
COLORS = {False: ("#1b7f3b", "#b3261e"), True: ("#81c995", "#f28b82")}  # (ok, bad) on light / dark


def fetch_example(transport, model: str, version: str | None) -> dict:
    return transport.agent("example", {"model": model, "version": version} if version else {"model": model})


def check_json(text: str) -> str:
    """'' when `text` is valid JSON, else what is wrong and where, in words."""
    try:
        json.loads(text)
    except ValueError as e:
        if not text.strip():
            return "The input is empty: type a JSON value."
        where = f" (line {e.lineno}, column {e.colno})" if hasattr(e, "lineno") else ""
        return f"Not valid JSON{where}: {getattr(e, 'msg', str(e))}"
    return ""


class PredictPanel(QWidget):
    """Signals:
        answered(object output, float seconds): a prediction came back
    """

    answered = Signal(object, float)

    def __init__(self, runner, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.server = self.model = self.version = None
        self.example_text = ""
        self._prefilling = False
        self.edited = False
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)

        self.input = QPlainTextEdit()
        self.input.setObjectName("predictInput")
        self.input.setFont(mono)
        self.input.setPlaceholderText('JSON input, e.g. {"instances": [[5.1, 3.5, 1.4, 0.2]]}')
        self.input.textChanged.connect(self._on_edit)
        self.validity = QLabel()
        self.validity.setObjectName("predictValidity")
        self.send_button = QPushButton(icon("predict"), "Send")
        self.send_button.setObjectName("predictSend")
        self.send_button.setShortcut("Ctrl+Return")
        self.send_button.setToolTip("Send the input to the model's runner (Ctrl+Enter)")
        self.send_button.clicked.connect(self.send)
        self.reset_button = QPushButton(icon("refresh"), "Reset to example")
        self.reset_button.clicked.connect(self.reset)
        self.output = QPlainTextEdit()
        self.output.setObjectName("predictOutput")
        self.output.setFont(mono)
        self.output.setReadOnly(True)
        self.output.setPlaceholderText("The model's answer appears here.")
        self.latency = QLabel()
        self.latency.setObjectName("predictLatency")
        self.banner = ErrorBanner()

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(QLabel("<b>Input</b> (JSON)"))
        lv.addWidget(self.input, 1)
        row = QHBoxLayout()
        row.addWidget(self.validity, 1)
        row.addWidget(self.reset_button)
        row.addWidget(self.send_button)
        lv.addLayout(row)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(QLabel("<b>Output</b>"))
        rv.addWidget(self.output, 1)
        rv.addWidget(self.latency)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addWidget(split, 1)

    # -- fed by the model page ----------------------------------------------------------------
    def set_model(self, server: str, model: str, version: str | None) -> None:
        """A (new) model or current version; re-fills the input unless the operator edited it."""
        same_model = (server, model) == (self.server, self.model)
        if same_model and version == self.version:
            return
        self.server, self.model, self.version = server, model, version
        if not same_model:
            self.edited = False
            self.output.clear()
            self.latency.clear()
            self.banner.clear()
            self._fill("")
        if not self.edited:
            self.load_example()

    def load_example(self) -> None:
        server, model, version = self.server, self.model, self.version
        if not server or not model:
            return
        (ServerOp(self, server, f"example {model}", lambda ctx: fetch_example(ctx.transport, model, version))
         .success(lambda r, k=(server, model): self._got_example(k, r))
         .failure(lambda e, k=(server, model): self._failed(k, e, "Cannot read the input example: ")).run())

    def reset(self) -> None:
        self.edited = False
        self.load_example()

    def send(self) -> None:
        text = self.input.toPlainText()
        problem = check_json(text)
        self._show_validity(problem)
        if problem:
            self.input.setFocus()
            return
        server, model = self.server, self.model
        if not server or not model:
            return
        payload = text.encode("utf-8")
        self.send_button.setEnabled(False)
        self.latency.setText("Waiting for the answer…")
        self.banner.clear()
        (ServerOp(self, server, f"predict {model}", lambda ctx: queries.predict(ctx.transport, model, payload))
         .ended(lambda: self.send_button.setEnabled(True))
         .only_if(lambda k=(server, model): k == (self.server, self.model))
         .success(self._got_answer).failure(self._send_failed)
         .with_banner(self.banner, "The prediction failed: ").run())

    # -- results ------------------------------------------------------------------------------
    def _got_example(self, key, result: dict) -> None:
        if key != (self.server, self.model) or self.edited:
            return
        example = result.get("example")
        self.example_text = "" if example is None else json.dumps(example, indent=2)
        self._fill(self.example_text)
        if example is None:
            self.validity.setText("This bundle has no input example: type a JSON input.")

    def _got_answer(self, result) -> None:
        output, seconds, headers = result
        self.output.setPlainText(json.dumps(output, indent=2, ensure_ascii=False))
        by = headers.get("X-Berth-Version") or headers.get("x-berth-version") or ""
        self.latency.setText(f"Answered in {seconds * 1000:.1f} ms" + (f" by {self.model} {by}" if by else ""))
        self.answered.emit(output, seconds)

    def _send_failed(self, error) -> None:
        self.latency.clear()
        if error_code(error) != INVALID_INPUT:
            return
        if self.example_text:
            self._show_expected(self.example_text)
            return
        server, model, version = self.server, self.model, self.version
        (ServerOp(self, server, f"example {model}", lambda ctx: fetch_example(ctx.transport, model, version))
         .only_if(lambda k=(server, model): k == (self.server, self.model))
         .success(lambda r: self._show_expected("" if r.get("example") is None else json.dumps(r["example"], indent=2)))
         .run())

    def _show_expected(self, example_text: str) -> None:
        """The output pane, after a 422: what the model expects, next to the refused input."""
        self.output.setPlainText(f"{EXPECTED_HEADING}\n{example_text}" if example_text else
                                 "The model refused the input's shape (see above); its bundle has no input example.")

    def _failed(self, key, error, prefix: str) -> None:
        self.send_button.setEnabled(True)
        if key != (self.server, self.model):
            return
        self.latency.clear()
        self.banner.show_error(error, prefix)

    # -- editing ------------------------------------------------------------------------------
    def _fill(self, text: str) -> None:
        self._prefilling = True
        self.input.setPlainText(text)
        self._prefilling = False
        self._show_validity(check_json(text) if text else "")

    def _on_edit(self) -> None:
        if self._prefilling:
            return
        self.edited = True
        self._show_validity(check_json(self.input.toPlainText()))

    def _show_validity(self, problem: str) -> None:
        ok_color, bad_color = COLORS[self.palette().color(QPalette.ColorRole.Window).lightness() < 128]
        if problem:
            self.validity.setText(problem)
            self.validity.setStyleSheet(f"color: {bad_color};")
        else:
            self.validity.setText("Valid JSON" if self.input.toPlainText().strip() else "")
            self.validity.setStyleSheet(f"color: {ok_color};")
