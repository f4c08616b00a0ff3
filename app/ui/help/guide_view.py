"""docs/user-guide.md inside the app: the same text as on disk (so it cannot differ from the
repository's), with its headings as a table of contents and a search box."""
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor, QTextDocument
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLineEdit, QListWidget, QListWidgetItem,
                               QSplitter, QTextBrowser, QVBoxLayout)

from app.ui.help import places


class GuideDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Berth user guide")
        self.resize(980, 720)
        self.text = QTextBrowser()
        self.text.setObjectName("guideText")
        self.text.setOpenExternalLinks(True)
        self.contents = QListWidget()
        self.contents.setObjectName("guideContents")
        self.contents.itemActivated.connect(self._jump)
        self.contents.itemClicked.connect(self._jump)
        self.search = QLineEdit()
        self.search.setObjectName("guideSearch")
        self.search.setPlaceholderText("Find in the guide (Enter: next)")
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(self.find_next)
        split = QSplitter()
        split.addWidget(self.contents)
        split.addWidget(self.text)
        split.setStretchFactor(1, 1)
        split.setSizes([330, 650])
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(buttons)
        self.load()

    def load(self) -> None:
        path = places.guide()
        if path is None:
            self.text.setPlainText("The user guide (docs/user-guide.md) is not in this installation.\n"
                                   "Read it online in Berth's repository, or reinstall Berth.")
            return
        self.text.setMarkdown(path.read_text(encoding="utf-8"))
        self.contents.clear()
        block = self.text.document().begin()
        while block.isValid():
            level = block.blockFormat().headingLevel()
            if 1 <= level <= 3 and block.text().strip():
                item = QListWidgetItem("    " * (level - 1) + block.text())
                item.setData(Qt.ItemDataRole.UserRole, block.position())
                self.contents.addItem(item)
            block = block.next()

    def headings(self) -> list[str]:
        return [self.contents.item(i).text().strip() for i in range(self.contents.count())]

    def _jump(self, item: QListWidgetItem) -> None:
        cursor = QTextCursor(self.text.document())
        cursor.setPosition(item.data(Qt.ItemDataRole.UserRole))
        self.text.setTextCursor(cursor)
        # the heading at the top of the view, not merely somewhere on screen
        bar = self.text.verticalScrollBar()
        bar.setValue(bar.maximum())
        self.text.ensureCursorVisible()

    def find_next(self) -> bool:
        """Select the next match of the search box's text, wrapping once at the end."""
        needle = self.search.text()
        if not needle:
            return False
        if self.text.find(needle):
            return True
        self.text.moveCursor(QTextCursor.MoveOperation.Start)
        return self.text.find(needle, QTextDocument.FindFlag(0))
