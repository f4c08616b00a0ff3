"""A read-only table of text rows, as the Help dialogs show them (licences, shortcuts)."""
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem


def text_table(name: str, headers: list[str], rows: list[tuple[str, ...]], stretch: int) -> QTableWidget:
    """`stretch`: the column that takes the width left; the others fit their contents."""
    table = QTableWidget(len(rows), len(headers))
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(text))
    header = table.horizontalHeader()
    for c in range(len(headers)):
        header.setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch if c == stretch
                                    else QHeaderView.ResizeMode.ResizeToContents)
    return table
