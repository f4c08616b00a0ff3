"""The fleet tree's right-click menu: deploy to, or roll back / start / stop on, the selected servers
or models, one confirmation for all (group_actions.py); with one server it is the usual dialog. An
entry a known role refuses on any target is disabled, its tooltip naming them (role_gate.py)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu

from app.bundle import check_path
from app.ui.errors import show_error
from app.ui.icons import icon
from app.ui.operations import BackgroundOp
from app.ui.servers.group_actions import ACTIONS, GroupRun, change_work, confirm_many, deploy_work
from app.ui.servers.role_gate import refusals


class FleetMenu(QObject):
    """`window` gives runner, fleet (FleetView), deploy_bundle(server, path) and on_changed(server)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.confirmation = None  # the open question (tests answer it)
        self.run: GroupRun | None = None  # the last group run's window
        window.fleet.customContextMenuRequested.connect(self._menu)

    def actions(self) -> list[QAction]:
        """What the selection allows, as menu entries."""
        fleet, found = self.window.fleet, []
        servers, models = fleet.selected_servers(), fleet.selected_models()
        if servers:
            n = len(servers)
            a = QAction(icon("deploy"), f"Deploy folder to {n} server{'s' if n > 1 else ''}…", self)
            a.triggered.connect(lambda: self.deploy(servers))
            _gate(a, refusals(self.window.runner, [(s, None) for s in servers], "deploy"))
            found.append(a)
        if models:
            n = len(models)
            for action, text in ACTIONS.items():
                a = QAction(icon(action), f"{text} {n} model{'s' if n > 1 else ''}…", self)
                a.triggered.connect(lambda _c=False, act=action: self.change(act, models))
                _gate(a, refusals(self.window.runner, models, action))
                found.append(a)
        return found

    def _menu(self, pos) -> None:
        found = self.actions()
        if found:
            menu = QMenu(self.window.fleet)
            menu.setToolTipsVisible(True)
            for a in found:
                menu.addAction(a)
            menu.popup(self.window.fleet.viewport().mapToGlobal(pos))

    def deploy(self, servers: list[str], path: str = "") -> None:
        """One server: the deploy dialog. Several: the bundle checked once, one question, then each."""
        if len(servers) == 1:
            self.window.deploy_bundle(servers[0], path)
            return
        if not path:
            path = QFileDialog.getExistingDirectory(self.window, f"Deploy a bundle folder to {len(servers)} servers")
            if not path:
                return
        (BackgroundOp(self.window, f"check {Path(path).name}", lambda ctx: check_path(Path(path)))
         .success(lambda result: self._checked(servers, path, result))
         .failure(lambda e: show_error(self.window, "Cannot check this bundle", e)).run())

    def _checked(self, servers: list[str], path: str, result) -> None:
        if not result.ok or result.manifest is None:
            first = result.errors[0] if result.errors else None
            show_error(self.window, "This bundle cannot be deployed",
                       ValueError(f"{Path(path).name}: {first.message if first else 'no berth.toml'}"))
            return
        m = result.manifest
        self.confirmation = confirm_many(
            self.window, "Deploy to several servers", f"Deploy {m.name} {m.version} to these {len(servers)} servers?",
            servers, f"Deploy to {len(servers)} servers",
            lambda reason: self._start(f"Deploy {m.name} {m.version}",
                                       [(s, s, deploy_work(Path(path), reason)) for s in servers]))

    def change(self, action: str, targets: list[tuple[str, str]]) -> None:
        verb = ACTIONS[action]
        names = [f"{model} on {server}" for server, model in targets]
        extra = " (each to the release deployed before its current one)" if action == "rollback" else ""
        self.confirmation = confirm_many(
            self.window, f"{verb} several models", f"{verb} these {len(targets)} models{extra}?", names,
            f"{verb} {len(targets)} models",
            lambda reason: self._start(f"{verb} {len(targets)} models",
                                       [(s, f"{m} on {s}", change_work(action, m, reason)) for s, m in targets]),
            reason=action == "rollback")

    def _start(self, title: str, parts) -> None:
        self.confirmation = None
        self.run = GroupRun(self.window.runner, title, parts, self.window)
        self.run.changed.connect(self.window.on_changed)
        self.run.open()


def _gate(action: QAction, why: list[str]) -> None:
    if why:
        action.setEnabled(False)
        action.setToolTip("\n".join(why))

