"""The Help menu and the first-run welcome, wired to the main window (kept out of main_window.py)."""
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence

from app.store.servers import LOCAL

from app.ui.help import places
from app.ui.settings import settings

SEEN = "welcome/seen"
EVERY_START = "welcome/every_start"


def _flag(value) -> bool:
    return value is True or str(value).lower() in ("true", "1")  # QSettings' ini files give strings back


class Help:
    def __init__(self, window, menu):
        self.window = window
        self.dialogs: dict[str, object] = {}
        self._waiting_for_example = False

        def add(text, slot, keys=(), name=""):
            action = QAction(text, window)
            action.setObjectName(name)
            action.setShortcuts([QKeySequence(k) for k in keys])
            action.triggered.connect(slot)
            menu.addAction(action)
            return action

        guide_keys = QKeySequence.keyBindings(QKeySequence.StandardKey.HelpContents) or [QKeySequence("F1")]
        self.guide_action = add("&User guide", self.show_guide, name="helpGuide")
        self.guide_action.setShortcuts(guide_keys)
        self.shortcuts_action = add("&Keyboard shortcuts", self.show_shortcuts, ["Ctrl+/"], "helpShortcuts")
        self.welcome_action = add("&Welcome…", self.show_welcome, name="helpWelcome")
        menu.addSeparator()
        self.about_action = add("&About Berth", self.show_about, name="helpAbout")

    def _open(self, key: str, make):
        dialog = self.dialogs.get(key)
        if dialog is None:
            dialog = self.dialogs[key] = make()
        dialog.show()
        if QGuiApplication.platformName() != "offscreen":  # no window stack there (and Qt warns)
            dialog.raise_()
            dialog.activateWindow()
        return dialog

    def show_guide(self):
        from app.ui.help.guide_view import GuideDialog

        return self._open("guide", lambda: GuideDialog(self.window))

    def show_shortcuts(self):
        from app.ui.help.shortcuts_view import ShortcutsDialog

        return self._open("shortcuts", lambda: ShortcutsDialog(self.window))

    def show_about(self):
        from app.ui.help.about_view import AboutDialog

        return self._open("about", lambda: AboutDialog(self.window))

    def show_welcome(self):
        from app.ui.help.welcome_view import WelcomeDialog

        dialog = WelcomeDialog(_flag(settings().value(EVERY_START, False)), self.window)
        dialog.try_local.connect(self.try_on_this_computer)
        dialog.add_server.connect(self.window.add_server)
        dialog.finished.connect(lambda _r: self._remember(dialog.every_start.isChecked()))
        self.dialogs["welcome"] = dialog
        dialog.open()
        return dialog

    def first_run(self):
        """At start: the welcome the first time (and every time when asked for), else nothing."""
        s = settings()
        if not _flag(s.value(SEEN, False)) or _flag(s.value(EVERY_START, False)):
            return self.show_welcome()
        return None

    def _remember(self, every_start: bool) -> None:
        s = settings()
        s.setValue(SEEN, True)
        s.setValue(EVERY_START, every_start)
        s.sync()

    def try_on_this_computer(self) -> None:
        """The iris example deployed to `local` with the usual deploy dialog, its model opened once it shows."""
        example = places.example("iris")
        if example is None:
            return
        self._waiting_for_example = True
        self.window.refresher.read.connect(self._example_listed)
        self.window.deploy_bundle(LOCAL, str(example))

    def _example_listed(self, server: str, rows: list) -> None:
        if not self._waiting_for_example or server != LOCAL:
            return
        if any(isinstance(r, dict) and r.get("model") == "iris" for r in rows):
            self._waiting_for_example = False
            self.window.refresher.read.disconnect(self._example_listed)
            self.window.fleet.select(LOCAL, "iris")
