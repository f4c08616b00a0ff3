"""The Experiment tab's "why": each comparison of the verdict (difference in error rate, accuracy,
MAE, p95) with B − A and its confidence interval, and the requests still needed when it is too
early to tell: what `berth experiment status` prints under its verdict line (app/cli/experiment.py),
from the same `verdict` object (app/agent/verdict.py)."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

NAMES = {"error_rate": "Error rate", "accuracy": "Accuracy", "mae": "Mean abs. error", "p95_ms": "p95 (ms)"}
COLUMNS = ["A", "B", "B − A", "Interval of B − A", "Says"]


def interval_text(metric: dict, confidence: float) -> str:
    ci = metric.get("ci")
    return f"{confidence:.0%} [{ci[0]:+.6g}, {ci[1]:+.6g}]" if ci else "too few for an interval"


def needed_text(verdict: dict) -> str:
    needed = verdict.get("requests_needed")
    if verdict.get("state") in ("better", "worse"):
        return "Enough data: the verdict stands on the intervals above."
    if not needed:
        return "Requests still needed: cannot be estimated yet (no difference between A and B to size it)."
    why = NAMES.get(verdict.get("needed_for"), verdict.get("needed_for") or "")
    return f"Requests still needed: about {needed:,} at the current traffic" + (f" (for {why.lower()})" if why else "")


class ExperimentIntervals(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("experimentIntervals")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.needed = QLabel()
        self.needed.setObjectName("experimentNeeded")
        self.needed.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addWidget(self.needed)

    def show_verdict(self, verdict: dict | None) -> None:
        verdict = verdict or {}
        metrics = verdict.get("metrics") or {}
        confidence = verdict.get("confidence") or 0.95
        self.table.setRowCount(len(metrics))
        self.table.setVerticalHeaderLabels([NAMES.get(name, name) for name in metrics])
        for row, m in enumerate(metrics.values()):
            cells = [f"{m['a']:.6g}", f"{m['b']:.6g}", f"{m['diff']:+.6g}", interval_text(m, confidence),
                     {"better": "B better", "worse": "B worse"}.get(m.get("call"), "no difference yet")]
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        rows = sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height() + rows + 2 * self.table.frameWidth())
        self.needed.setText(needed_text(verdict) if metrics or verdict else "")
