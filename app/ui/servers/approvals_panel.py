"""Four eyes on the server page: the changes waiting there for a second person's approval, with what
each will change, and Approve / Reject after a confirmation whose default is Cancel. Shown to all;
the server itself refuses whoever may not decide (the requester, a lower role), and says so here.
Approve shows the request's digest and sends it: the server refuses a request changed since."""
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QVBoxLayout, QWidget

from app.deploy import approvals
from app.deploy.changes import run_to_end

from app.ui.deploy.confirm_page import add_reason
from app.ui.operations import ServerOp

WAITING_STYLE = "color: #8a5300; font-weight: bold;"


class ApprovalsPanel(QWidget):
    def __init__(self, runner, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.server = ""
        self.confirmation: QMessageBox | None = None
        self.rows: list[QWidget] = []
        self.box = QVBoxLayout(self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("—")
        self.label.setObjectName("approvalsLabel")
        self.label.setWordWrap(True)
        self.box.addWidget(self.label)

    def refresh(self, server: str) -> None:
        self.server = server
        (ServerOp(self, server, f"approvals {server}", lambda ctx: approvals.listed(ctx.transport))
         .only_if(lambda: self.server == server)
         .success(self._show).failure(lambda e: self.label.setText(f"cannot list them: {e}")).run())

    def _show(self, listing: dict) -> None:
        for row in self.rows:
            row.deleteLater()
        self.rows = []
        pending = [r for r in listing["requests"] if r["state"] == "pending"]
        self.label.setText(f"{len(pending)} change(s) waiting for a second person's approval" if pending
                           else "none waiting")
        self.label.setStyleSheet(WAITING_STYLE if pending else "")
        for request in pending:
            self.rows.append(self._row(request))
            self.box.addWidget(self.rows[-1])

    def _row(self, request: dict) -> QWidget:
        row = QWidget()
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        text = QLabel(f"<b>{request['id']}</b> {request['what']}: asked by {request['requested_by']} at "
                      f"{request['requested_at']}, until {request['expires_at']}"
                      + (f" (“{request['reason']}”)" if request.get("reason") else ""))
        text.setWordWrap(True)
        line.addWidget(text, 1)
        for verb, reject in (("Approve", False), ("Reject", True)):
            button = QPushButton(f"{verb}…")
            button.setObjectName(f"{verb.lower()}-{request['id']}")
            button.clicked.connect(lambda _=False, r=request, no=reject: self.ask(r, no))
            line.addWidget(button)
        return row

    def ask(self, request: dict, reject: bool) -> None:
        verb = "Reject" if reject else "Approve"
        box = QMessageBox(QMessageBox.Icon.Question, f"{verb} a change on {self.server}",
                          f"{verb} {request['id']}?\n\n{request['what']}\nasked by {request['requested_by']}"
                          f"\nrequest sha256 {request.get('digest') or '?'}",
                          QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText("Rejected, it never runs." if reject else
                               "The server then makes this change exactly as it was asked.")
        box.confirm_button = box.addButton(verb, QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        add_reason(box)
        box.finished.connect(lambda _r, b=box: self._decide(request["id"], b.reason.text().strip(), reject,
                                                            request.get("digest"))
                             if b.clickedButton() is b.confirm_button else None)
        self.confirmation = box
        box.open()

    def _decide(self, rid: str, reason: str, reject: bool, digest: str | None) -> None:
        server = self.server
        (ServerOp(self, server, f"approve {rid}",
                  lambda ctx: run_to_end(approvals.decide(ctx.transport, ctx.workspace.audit, rid, reason, reject,
                                                          None if reject else digest)))
         .success(lambda _r: self.refresh(server)).failure(self._failed).run())

    def _failed(self, error) -> None:
        self.label.setText(str(error))
        self.label.setStyleSheet(WAITING_STYLE)
