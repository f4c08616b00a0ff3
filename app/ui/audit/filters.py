"""The Audit view's filter bar: server, model, action, actor, outcome, free text and a time range.

Times are picked and shown in local time and handed to the filter as UTC ISO text (the log's own
form). A preset ("last 24 hours") stays relative: it is sent as an age (`24h`), so a refresh an
hour later still shows the last 24 hours, and the pickers show what it means right now."""
from datetime import datetime, timedelta, timezone

from PySide6.QtCore import QDate, QDateTime, QTime, Signal
from PySide6.QtWidgets import QComboBox, QDateTimeEdit, QHBoxLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from app.audit.period import iso, parse_time
from app.audit.query import AuditFilter

OUTCOMES = (("Any outcome", ""), ("ok", "ok"), ("failed", "failed"), ("interrupted", "interrupted"),
            ("started", "started"))
PRESETS = (("All time", ""), ("Last hour", "1h"), ("Last 24 hours", "24h"), ("Last 7 days", "7d"),
           ("Last 30 days", "30d"), ("Custom range", "custom"))
UNSET = QDateTime(QDate(2000, 1, 1), QTime(0, 0))  # a picker at its minimum means "no bound"
FORMAT = "yyyy-MM-dd HH:mm"


def utc_iso(value: QDateTime, end: bool = False) -> str:
    """A picked local time as the log's UTC text; an end bound covers its whole minute."""
    moment = datetime.fromtimestamp(value.toSecsSinceEpoch(), timezone.utc)
    if end:
        moment += timedelta(seconds=59, milliseconds=999)
    return iso(moment)


def as_qt(moment: datetime) -> QDateTime:
    return QDateTime.fromSecsSinceEpoch(int(moment.timestamp()))


class AuditFilterBar(QWidget):
    """The filter controls above the Audit table.

    Signals:
        changed(): a combo, the range or the preset changed
        edited(): the text (or a picker) is being typed in (the page debounces this one)
    """

    changed = Signal()
    edited = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._quiet = False
        rows = QVBoxLayout(self)
        rows.setContentsMargins(0, 0, 0, 0)
        top, bottom = QHBoxLayout(), QHBoxLayout()
        rows.addLayout(top)
        rows.addLayout(bottom)

        self.server_combo = self._combo("serverFilter", "All servers")
        self.model_combo = self._combo("modelFilter", "All models")
        self.action_combo = self._combo("actionFilter", "All actions")
        self.actor_combo = self._combo("actorFilter", "Anyone")
        self.outcome_combo = self._combo("outcomeFilter", OUTCOMES[0][0])
        for label, value in OUTCOMES[1:]:
            self.outcome_combo.addItem(label, value)
        self.combos = {"server": self.server_combo, "model": self.model_combo, "action": self.action_combo,
                       "actor": self.actor_combo}
        for combo in (*self.combos.values(), self.outcome_combo):
            top.addWidget(combo)
            combo.currentIndexChanged.connect(self._changed)
        self.text_edit = QLineEdit()
        self.text_edit.setObjectName("textFilter")
        self.text_edit.setPlaceholderText("Filter text (Ctrl+F)")
        self.text_edit.setClearButtonEnabled(True)
        self.text_edit.textChanged.connect(lambda _t: self.edited.emit())
        top.addWidget(self.text_edit, 1)

        self.preset_combo = QComboBox()
        self.preset_combo.setObjectName("rangePreset")
        for label, value in PRESETS:
            self.preset_combo.addItem(label, value)
        self.preset_combo.currentIndexChanged.connect(self._preset_chosen)
        self.since_edit = self._picker("sinceEdit", "from the start")
        self.until_edit = self._picker("untilEdit", "now")
        bottom.addWidget(QLabel("Time:"))
        bottom.addWidget(self.preset_combo)
        bottom.addWidget(QLabel("from"))
        bottom.addWidget(self.since_edit)
        bottom.addWidget(QLabel("to"))
        bottom.addWidget(self.until_edit)
        zone = datetime.now().astimezone().strftime("%Z") or "local time"
        bottom.addWidget(QLabel(f"({zone})"))
        self.bottom_row = bottom  # the page adds its buttons at the end

    def _combo(self, name: str, everything: str) -> QComboBox:
        combo = QComboBox()
        combo.setObjectName(name)
        combo.addItem(everything, "")
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        combo.setMinimumContentsLength(8)
        return combo

    def _picker(self, name: str, unset_text: str) -> QDateTimeEdit:
        edit = QDateTimeEdit()
        edit.setObjectName(name)
        edit.setCalendarPopup(True)
        edit.setDisplayFormat(FORMAT)
        edit.setMinimumDateTime(UNSET)
        edit.setSpecialValueText(unset_text)
        edit.setDateTime(UNSET)
        edit.dateTimeChanged.connect(self._picked)
        return edit

    # -- the filter ---------------------------------------------------------------------------
    def current_filter(self) -> AuditFilter:
        preset = self.preset_combo.currentData() or ""
        if preset and preset != "custom":
            since, until = preset, ""
        else:
            since = "" if self.since_edit.dateTime() == UNSET else utc_iso(self.since_edit.dateTime())
            until = "" if self.until_edit.dateTime() == UNSET else utc_iso(self.until_edit.dateTime(), end=True)
        return AuditFilter(server=self.server_combo.currentData() or "", model=self.model_combo.currentData() or "",
                           action=self.action_combo.currentData() or "", actor=self.actor_combo.currentData() or "",
                           outcome=self.outcome_combo.currentData() or "", text=self.text_edit.text().strip(),
                           since=since, until=until)

    def set_range(self, since: datetime | None, until: datetime | None) -> None:
        """A custom range (None: open on that side), as an operator picking it would."""
        self._quiet = True
        try:
            self.since_edit.setDateTime(as_qt(since) if since else UNSET)
            self.until_edit.setDateTime(as_qt(until) if until else UNSET)
            self.preset_combo.setCurrentIndex(self.preset_combo.findData("custom" if since or until else ""))
        finally:
            self._quiet = False
        self.changed.emit()

    def set_preset(self, age: str) -> None:
        self.preset_combo.setCurrentIndex(self.preset_combo.findData(age))

    def show_preset_range(self) -> None:
        """The pickers show what a relative preset means now (called on each refresh)."""
        preset = self.preset_combo.currentData() or ""
        if not preset or preset == "custom":
            return
        self._quiet = True
        try:
            self.since_edit.setDateTime(as_qt(parse_time(preset)))
            self.until_edit.setDateTime(UNSET)
        finally:
            self._quiet = False

    def fill_choices(self, choices: dict) -> None:
        """The values each combo offers: what occurs in the log (the current choice always stays)."""
        self._quiet = True
        try:
            for key, combo in self.combos.items():
                current = combo.currentData() or ""
                values = list(choices.get(key, []))
                if current and current not in values:
                    values.append(current)  # keep the operator's choice even when it matches nothing now
                wanted = [""] + sorted(values)
                if [combo.itemData(i) for i in range(combo.count())] != wanted:
                    everything = combo.itemText(0)
                    combo.clear()
                    combo.addItem(everything, "")
                    for value in wanted[1:]:
                        combo.addItem(value, value)
                    combo.setCurrentIndex(max(0, combo.findData(current)))
        finally:
            self._quiet = False

    # -- changes ------------------------------------------------------------------------------
    def _changed(self, _index=None) -> None:
        if not self._quiet:
            self.changed.emit()

    def _preset_chosen(self, _index: int) -> None:
        if self._quiet:
            return
        preset = self.preset_combo.currentData() or ""
        if preset == "":
            self._quiet = True
            try:
                self.since_edit.setDateTime(UNSET)
                self.until_edit.setDateTime(UNSET)
            finally:
                self._quiet = False
        self.show_preset_range()
        self.changed.emit()

    def _picked(self, _value) -> None:
        if self._quiet:
            return
        if self.preset_combo.currentData() != "custom":  # the operator took over the range
            self._quiet = True
            try:
                self.preset_combo.setCurrentIndex(self.preset_combo.findData("custom"))
            finally:
                self._quiet = False
        self.edited.emit()
