"""`berth --self-test`: the whole console once, offscreen, in a throwaway Berth home, so an install
(from source or the packaged folder) is known to work before an operator relies on it. Each step is
printed; the first that fails is named and the exit status is 1. Nothing of the operator's Berth,
keyring or settings is touched: BERTH_HOME is a temporary folder and the keyring is keyring's
"fail" backend (the anchor is then unauthenticated, which the test does not need)."""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "resources" / "examples" / "iris"
WAIT_S = 60.0


class StepFailed(Exception):
    pass


def run_self_test(out=None, example: Path = EXAMPLE) -> int:
    """0 when every step passed; 1 after the first that failed (named on the last line)."""
    out = out or sys.stdout
    home = Path(tempfile.mkdtemp(prefix="berth-self-test-"))
    saved = {k: os.environ.get(k) for k in ("BERTH_HOME", "QT_QPA_PLATFORM")}
    os.environ["BERTH_HOME"] = str(home / "home")
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    test = _SelfTest(home, out, Path(example))
    try:
        return test.run()
    finally:
        test.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(home, ignore_errors=True)


class _SelfTest:
    def __init__(self, home: Path, out, example: Path):
        self.home, self.out, self.example = home, out, example
        self.app = self.window = self.ws = self.transport = None

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def run(self) -> int:
        frozen = "packaged" if getattr(sys, "frozen", False) else "from source"
        self.say(f"berth --self-test ({frozen}, Python {sys.version.split()[0]}, Berth home {self.home})")
        steps = [("keyring", self.keyring), ("window", self.open_window), ("deploy iris", self.deploy),
                 ("console shows it", self.shown), ("predict", self.predict),
                 ("deploy a second version", self.deploy_v2), ("roll back", self.roll_back),
                 ("predict after the rollback", self.predict_again), ("PDF report", self.report),
                 ("stop", self.stop)]
        for name, step in steps:
            start = time.monotonic()
            try:
                detail = step()
            except Exception as e:  # noqa: BLE001 every failure is reported as the step's, in one line
                from app.errors import one_line

                self.say(f"  FAILED {name}: {one_line(e) if not isinstance(e, StepFailed) else e}")
                self.say(f"self-test failed at step: {name}")
                return 1
            self.say(f"  ok {name} ({time.monotonic() - start:.1f} s){': ' + detail if detail else ''}")
        self.say("self-test passed")
        return 0

    def keyring(self) -> str:
        """Which backend the operator's Berth would use (a packaged app must bring it), then none."""
        import keyring
        from keyring.backends import fail

        found = type(keyring.get_keyring()).__module__ + "." + type(keyring.get_keyring()).__name__
        keyring.set_keyring(fail.Keyring())  # the throwaway log's anchor key goes to no real keyring
        return f"{found} (not used by the self-test)"

    def open_window(self) -> str:
        from PySide6.QtWidgets import QApplication

        from app.ui.main_window import MainWindow
        from app.ui.theme import apply_theme

        self.app = QApplication.instance() or QApplication(sys.argv[:1])
        apply_theme(self.app)
        self.window = MainWindow()
        self.window.show()
        self._wait(lambda: self.window.fleet_model.server_item("local") is not None, "the local server row")
        return self.window.windowTitle()

    def deploy(self) -> str:
        from app.deploy.changes import run_to_end
        from app.workspace import Workspace

        if not (self.example / "berth.toml").is_file():
            raise StepFailed(f"the example bundle is missing ({self.example})")
        self.ws = Workspace()
        self.transport = self.ws.connect("local")
        run_to_end(self.ws.deploy(self.transport, self.example).run())
        return f"to {self.transport.abs_root}"

    def shown(self) -> str:
        self.window.refresher.refresh("local", force=True)
        self._wait(lambda: self.window.fleet_model.model_item("local", "iris") is not None, "iris in the fleet")
        return "iris in the fleet tree"

    def predict(self, want: str = "1.0.0") -> str:
        from app.deploy import queries

        sample = (self.example / "example.json").read_bytes()
        output, seconds, headers = queries.predict(self.transport, "iris", sample)
        version = headers.get("X-Berth-Version")
        if version != want:
            raise StepFailed(f"answered by version {version}, expected {want}")
        answer = output[0].get("class") if isinstance(output, list) and output and isinstance(output[0], dict) \
            else json.dumps(output)[:40]
        return f"{answer!r} from {version} in {seconds * 1000:.0f} ms"

    def deploy_v2(self) -> str:
        from app.deploy.changes import run_to_end

        v2 = self.home / "iris-v2"
        shutil.copytree(self.example, v2)
        toml = (v2 / "berth.toml").read_text()
        (v2 / "berth.toml").write_text(toml.replace('version = "1.0.0"', 'version = "1.0.1"', 1))
        run_to_end(self.ws.deploy(self.transport, v2).run())
        return self.predict("1.0.1")

    def roll_back(self) -> str:
        from app.deploy.changes import run_to_end

        run_to_end(self.ws.change(self.transport, "rollback", "iris", to="1.0.0"))
        return "to 1.0.0"

    def predict_again(self) -> str:
        return self.predict("1.0.0")

    def report(self) -> str:
        from app.audit.actor import actor_label, local_actor
        from app.audit.export import export_events
        from app.audit.query import AuditFilter
        from app.ui.audit.report_pdf import write_pdf

        path = self.home / "audit-report.pdf"
        result = export_events(self.ws.db, AuditFilter(), "pdf", path, exported_by=actor_label(local_actor()),
                               pdf_writer=write_pdf)
        head = path.read_bytes()[:5]
        if head != b"%PDF-" or result.count < 3:
            raise StepFailed(f"{path.name}: {result.count} events, starts with {head!r}")
        return f"{result.count} events, {path.stat().st_size} bytes; {result.verdict.message}"

    def stop(self) -> str:
        from app.deploy.changes import run_to_end

        run_to_end(self.ws.change(self.transport, "stop", "iris"))
        return ""

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not ready():
            if time.monotonic() > deadline:
                raise StepFailed(f"{what} did not appear within {WAIT_S:.0f} s")
            self.app.processEvents()
            time.sleep(0.02)

    def close(self) -> None:
        """The window and its threads, the connection, then whatever still runs from the temporary
        root (the scheduler a deploy starts for the runner watchdog): nothing outlives the test."""
        if self.window is not None:
            self.window.close()
            self.window.runner.shutdown(wait=True)
            self.window.deleteLater()
            self.app.processEvents()
        if self.transport is not None:
            self.transport.close()
        if self.ws is not None:
            self.ws.close()
        _end_processes_under(self.home)


def _end_processes_under(folder: Path) -> None:
    from app.agent import scheduler
    from app.agent.layout import Root
    from app.deploy.leftovers import end_processes_naming

    root = folder / "home" / "local"
    if (root / ".berth").is_dir():
        try:
            scheduler.stop(Root(str(root)))
        except Exception:  # noqa: BLE001 (what is left is ended below)
            pass
    end_processes_naming(str(folder))
