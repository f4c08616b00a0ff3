"""The server page's "Packages" row: what the server's pip can install (Python, ABI, glibc or musl,
the wheel platform tags), whether its package index answers, where deploys take packages from
(`berth server set NAME --index ...`) and when that was checked. It shows the facts cached for
deploys at once, asks the server only when none are cached or on "Check again", and caches the
answer (the same `server_facts` a deploy asks, so the page and the next deploy agree)."""
from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from app.deploy.offline import ask_facts
from app.store.server_index import IndexSetting, ServerIndexes

from app.ui.icons import icon
from app.ui.operations import ServerOp

SOURCES = {"online": "the server's own index (online)", "offline": "uploaded from this computer (offline)",
           "auto": "its index when it answers, else uploaded (auto)"}


class PackagesPanel(QWidget):
    def __init__(self, runner, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.server = ""
        self._task = None
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("—")
        self.label.setObjectName("packagesLabel")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.button = QPushButton(icon("refresh"), "Check again")
        self.button.setObjectName("checkPackagesButton")
        self.button.setToolTip("Ask the server its Python, platform tags and whether its package index answers")
        self.button.clicked.connect(lambda: self.check(ask=True))
        row.addWidget(self.label, 1)
        row.addWidget(self.button, 0, Qt.AlignmentFlag.AlignTop)

    def show_server(self, server: str) -> None:
        self.server = server
        self.label.setText("—")
        self.check(ask=False)

    def check(self, ask: bool) -> None:
        """The cached facts; the server's own answer when `ask` or when none are cached."""
        name = self.server
        self.button.setEnabled(False)
        self._task = (ServerOp(self, name, f"packages {name}", lambda ctx: _facts(ctx, name, ask))
                      .ended(lambda: self.button.setEnabled(True))
                      .only_if(lambda: self.server == name)
                      .success(self.show_setting)
                      .failure(lambda e: self.label.setText(f"could not ask the server: {e}")).run())

    def show_setting(self, setting: IndexSetting) -> None:
        self.label.setText(describe(setting))
        self.label.setToolTip("wheel tags, most specific first: " + ", ".join(setting.facts.get("platforms") or []))


def _facts(ctx, name: str, ask: bool) -> IndexSetting:
    indexes = ServerIndexes(ctx.workspace.db)
    setting = indexes.get(name)
    if ask or not setting.facts or "index" not in setting.facts:
        indexes.remember(name, ask_facts(ctx.transport))
        setting = indexes.get(name)
    return setting


def describe(setting: IndexSetting) -> str:
    """Rich text: four short lines a person reads top to bottom."""
    f = setting.facts
    tags = f.get("platforms") or []
    libc = f"{f.get('libc')} {f.get('libc_version')}".strip() if f.get("libc") else "libc unknown (no manylinux)"
    shown = ", ".join(tags[:1] + (["…", tags[-2], tags[-1]] if len(tags) > 3 else tags[1:]))
    index = f.get("index") or {}
    reach = ("answers" if index.get("reachable") else f"does not answer ({index.get('detail') or 'unknown'})")
    source = SOURCES.get(setting.mode, f"the private index {setting.url}")
    lines = [f"Python {f.get('python')} ({f.get('abi')}, {f.get('machine')}), {libc}",
             f"wheels: {shown}",
             f"its package index: {index['url']}, {reach}" if index else "its package index: not asked yet",
             f"deploys take packages from {source}; checked {setting.checked_at.replace('T', ' ').replace('+00:00', ' UTC') or 'never'}"]
    return "<br>".join(escape(line) for line in lines)
