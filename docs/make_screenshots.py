"""Render the console's main views from a real session into docs/screenshots/ (`make screenshots`).

Nothing is staged: a throw-away Berth home, the built-in `local` server, the iris example deployed as
1.0.0 then 1.1.0 through the real services, then the window driven as an operator would.
Run with QT_QPA_PLATFORM=offscreen (the Makefile does); BERTH_THEME=dark gives the dark palette.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
EXAMPLE = ROOT / "resources" / "examples" / "iris"
SIZE = (1280, 800)


def iris(dest: Path, version: str) -> Path:
    folder = dest / f"iris-{version}"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    toml = folder / "berth.toml"
    text = re.sub(r'(?m)^version\s*=\s*"[^"]*"', f'version = "{version}"', toml.read_text(), count=1)
    if version != "1.0.0":  # a retrained model: the Releases tab's comparison has something to show
        text = text.replace("learning_rate = 0.1,", "learning_rate = 0.05,").replace("accuracy = 0.9333,", "accuracy = 0.9667,")
    toml.write_text(text)
    return folder


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="berth-shots-"))
    os.environ["BERTH_HOME"] = str(home)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    from PySide6.QtWidgets import QApplication

    from app.deploy.changes import change, run_to_end
    from app.deploy.deploy import Deploy
    from app.ui.deploy.dialog import DeployDialog
    from app.ui.main_window import MainWindow
    from app.ui.theme import apply_theme
    from app.workspace import Workspace

    app = QApplication(sys.argv[:1])
    app.setApplicationName("Berth")
    app.setOrganizationName("Berth-screenshots")  # never the operator's own window layout
    apply_theme(app)

    def wait(cond, timeout=90.0, what="") -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError(f"screenshots: gave up waiting for {what}")
            app.processEvents()
            time.sleep(0.02)

    def settle(seconds=0.4) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)

    def shot(widget, name: str) -> None:
        settle()
        path = OUT / f"{name}.png"
        if not widget.grab().save(str(path)):
            raise OSError(f"cannot write {path}")
        print(f"  {path.relative_to(ROOT)}")

    OUT.mkdir(parents=True, exist_ok=True)
    bundles = home / "bundles"
    bundles.mkdir()
    ws = Workspace()
    transport = ws.connect("local")
    window = None
    try:
        print("deploying iris 1.0.0 and 1.1.0 on local …")
        for version in ("1.0.0", "1.1.0"):
            run_to_end(Deploy(transport, iris(bundles, version), ws.audit).run())

        window = MainWindow()
        window.resize(*SIZE)
        window.show()
        window.show_monitor()  # sampling starts now: the monitor shots at the end show the whole session
        model = window.fleet_model
        wait(lambda: model.model_item("local", "iris") is not None, what="the fleet")
        window.fleet.select("local")
        wait(lambda: window.server_page.fields["python"].text() != "—", what="the server page")
        wait(lambda: window.server_page.engines_panel.text() != "—", what="the container engines")
        wait(lambda: "Python" in window.server_page.packages_panel.label.text(), what="the server's packages")
        shot(window, "server")
        help_shots(window, shot)

        window.fleet.select("local", "iris")
        page = window.model_page
        wait(lambda: len(page.releases) == 2 and page.header.rollback_button.isEnabled(), what="the model page")
        shot(window, "model-overview")
        page.tabs.setCurrentWidget(page.releases_view)
        page.releases_view.select_version("1.1.0")
        wait(lambda: "asking" not in page.releases_view.diff.title.text()
             and "1.0.0 to 1.1.0" in page.releases_view.diff.title.text(), what="the release comparison")
        page.releases_view.where.ask()  # "Where has this run?" for the selected bundle
        wait(lambda: page.releases_view.where.rows(), what="where the bundle has run")
        shot(window, "releases")
        page.tabs.setCurrentWidget(page.predict)
        wait(lambda: page.predict.input.toPlainText().strip() != "", what="the input example")
        page.predict.send()
        wait(lambda: page.predict.latency.text().startswith("Answered"), what="a prediction")
        shot(window, "predict")
        experiment_shot(window, ws, transport, wait, shot)
        jobs_shot(window, ws, transport, home, wait, shot)
        viewer_shot(window, home, wait, shot)

        window.deploy_bundle("local", str(iris(bundles, "1.2.0")))  # what a drop on `local` does
        dialog = window.findChild(DeployDialog)
        dialog.resize(820, 620)
        wait(lambda: dialog.plan is not None or dialog.stack.currentWidget() is dialog.check_page and
             dialog.next_button.isEnabled(), what="the deploy check")
        if dialog.plan is None:
            dialog.next_button.click()
            wait(lambda: dialog.plan is not None, what="the deploy plan")
        shot(dialog, "deploy-confirm")
        dialog.deploy_button.click()
        wait(lambda: not dialog.deploying, timeout=120, what="the deploy")
        shot(dialog, "deploy-progress")
        dialog.close()

        wait(lambda: model.model_item("local", "iris").text() == "iris  1.2.0", what="the fleet after the deploy")
        audit_shot(window, ws, wait, shot)
        report_shots(ws, home)
        html_shot(ws, home)
        monitor_shots(window, transport, wait, settle, shot)
        alerts_shot(window, ws, transport, home, wait, shot)
        fleet_shot(window, ws, wait, shot)
        policy_shot(window, home, wait, shot)
    finally:
        if window is not None:
            window.close()
        for job in ("hourly-scores",):  # no scheduler outlives the screenshots (it stops with the last job)
            try:
                ws.job_change(transport, "remove", job, "iris")
            except Exception as e:  # noqa: BLE001 (not added: the shot failed earlier)
                print(f"  (job {job}: {e})")
        for rule in ALERT_RULES:  # nor with the last alert rule
            try:
                ws.alert_change(transport, "remove", rule[0], rule[2])
            except Exception as e:  # noqa: BLE001 (not added: the shot failed earlier)
                print(f"  (alert {rule[0]}: {e})")
        run_to_end(change(transport, ws.audit, "stop", "iris"))  # no runner outlives the screenshots
        transport.close()
        shutil.rmtree(home, ignore_errors=True)
    return 0


def help_shots(window, shot) -> None:
    """The first-run welcome and the user guide inside the app (Help menu)."""
    welcome = window.help.show_welcome()
    shot(welcome, "welcome")
    welcome.reject()
    guide = window.help.show_guide()
    guide.contents.itemClicked.emit(guide.contents.item(1))
    shot(guide, "guide")
    guide.close()


def predict_labelled(conn, rid: str, n: int) -> tuple[str, str]:
    """One prediction of an iris row with its own X-Request-Id: (version that answered, class)."""
    import json

    rows = json.loads((EXAMPLE / "example.json").read_text())["instances"]
    conn.request("POST", "/predict", json.dumps({"features": rows[n % len(rows)]}).encode(),
                 {"Content-Type": "application/json", "X-Request-Id": rid})
    resp = conn.getresponse()
    answer = json.loads(resp.read())
    return resp.getheader("X-Berth-Version"), answer["class"]


def post_labels(port: int, labels: dict) -> None:
    """Ground truth for the requests answered ({request id: label}), through POST /feedback."""
    import json

    from app.agent.health import request

    status, body = request(port, "POST", "/feedback", json.dumps(
        [{"request_id": r, "label": label} for r, label in labels.items()]).encode())
    assert status == 200 and json.loads(body)["unknown"] == 0, body


def experiment_shot(window, ws, transport, wait, shot) -> None:
    """The Experiment tab: an A/B experiment of 1.0.0 (B, 30 %) against the current 1.1.0, with a few
    hundred predictions through the stable port between three readings; then stopped."""
    import http.client
    import time

    from app.agent.health import request
    from app.deploy import experiments, queries

    experiments.start(transport, ws.audit, "iris", {"b": "1.0.0", "mode": "ab", "weight": 0.3})
    page = window.model_page
    page.tabs.setCurrentWidget(page.experiment)
    port = queries.status(transport, "iris")[0]["port"]
    body = (EXAMPLE / "example.json").read_bytes()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    labels = {}
    try:
        for step in range(3):
            for i in range(150):
                request(port, "POST", "/predict", body)
                rid = f"shot-{step}-{i}"
                version, answered = predict_labelled(conn, rid, i)
                wrong = i % (9 if version == "1.0.0" else 25) == 0  # the label says B (1.0.0) is wrong more often
                labels[rid] = "virginica" if wrong and answered != "virginica" else answered
            post_labels(port, labels)
            time.sleep(1.0)
            page.experiment_tab.refresh(force=True)
            wait(lambda: page.experiment.stack.currentIndex() == 1, what="the experiment")
            time.sleep(0.3)
        wait(lambda: "B = 1.0.0" in page.experiment.headline.text(), what="the experiment's figures")
        window.refresh("local", force=True)  # the fleet tree marks the model with its experiment
        wait(lambda: "ab 30%" in ((window.fleet_model.status_of("local", "iris") or {}).get("experiment") or ""),
             what="the fleet's experiment mark")
        shot(window, "experiment")
    finally:
        conn.close()
        experiments.stop(transport, ws.audit, "iris")
        page.experiment_tab.refresh(force=True)


def jobs_shot(window, ws, transport, home: Path, wait, shot) -> None:
    """The Jobs tab: a job over an inbox of JSON lines into a SQLite file, run three times on
    batches of flowers (one batch with rows the bundle's input check rejects)."""
    from app.deploy import jobs

    inbox, out = home / "inbox", home / "results"
    inbox.mkdir()
    out.mkdir()
    ws.job_change(transport, "add", "hourly-scores", "iris", {
        "model": "iris", "schedule": {"every": "1h"}, "tz": "Europe/Vienna",
        "input": {"kind": "dir", "path": str(inbox), "pattern": "*.jsonl"},
        "output": {"url": f"sqlite:///{out}/iris.db", "table": "flowers"}, "version": None})
    rows = [[5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [6.3, 3.3, 6.0, 2.5], [4.9, 3.0, 1.4, 0.2],
            [5.9, 3.0, 5.1, 1.8], [5.5, 2.4, 3.8, 1.1]]
    batches = [rows * 4, rows[:4] * 3 + [[1.0, 2.0]] * 3, rows * 6]
    for n, batch in enumerate(batches):
        (inbox / f"batch-{n}.jsonl").write_text("".join('{"features": %s}\n' % r for r in batch))
        run = ws.job_change(transport, "run", "hourly-scores", "iris")["run"]
        wait(lambda: next(r for r in jobs.runs(transport, "hourly-scores") if r["run_id"] == run["run_id"])["state"]
             != "running", what="a job run")
    page = window.model_page
    page.tabs.setCurrentWidget(page.jobs)
    view = page.jobs
    wait(lambda: len(view.runs) == 3 and view.errors_model.rowCount() > 0, what="the Jobs tab")
    shot(window, "jobs")


def viewer_shot(window, home: Path, wait, shot) -> None:
    """The Jobs tab for a viewer: its actions disabled, each tooltip naming the role needed; then the
    policy goes again (the root's owner is admin: the later shots change things)."""
    import getpass
    import json

    policy = home / "local" / "policy.json"
    policy.write_text(json.dumps({"roles": {getpass.getuser(): {"*": "viewer"}, "ops-lead": {"*": "admin"}}}))
    page = window.model_page
    page.roles.forget()
    wait(lambda: page.header.role_label.text().startswith("you: viewer"), what="the viewer's role")
    page.jobs.jobs_table.selectRow(0)
    shot(window, "jobs-viewer")
    policy.unlink()
    page.roles.forget()
    wait(lambda: page.header.role_label.text().startswith("you: admin"), what="the owner's role again")


ALERT_RULES = [("disk-low", "disk_free_pct<100", None, "ok"),  # name, condition, model, its webhook: answering
               ("mem-high", "memory_pct>1", None, "down")]  # or not


def alerts_shot(window, ws, transport, home: Path, wait, shot) -> None:
    """The Alerts view: two alerts firing (one silenced, one whose webhook is down, in red), the
    tree's count, the banner that announced them."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from app.agent import alerteval
    from app.agent.layout import Root
    class Hook(BaseHTTPRequestHandler):  # a team chat's incoming webhook
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    urls = {"ok": f"http://127.0.0.1:{hook.server_address[1]}/chat", "down": "http://127.0.0.1:9/pager"}

    def rounds():
        ev = alerteval.Evaluator(Root(str(home / "local")))
        ev.tick()
        ev.close()

    try:
        for name, when, model, hook_state in ALERT_RULES:
            ws.alert_change(transport, "add", name, model, {"when": when, "for": 0, "repeat": 14400,
                                                            "notify": [f"webhook:{urls[hook_state]}"], "model": model})
        rounds()
        ws.alert_change(transport, "silence", "disk-low", None, {"for": 7200, "reason": "disk swap at 14:00"},
                        reason="disk swap at 14:00")
        rounds()  # the round that marks it silenced
        window.refresh("local", force=True)
        wait(lambda: window.alerts.banner.isVisible(), what="the alert banner")
        window.alerts.show()
        page = window.alerts.page
        wait(lambda: page.table.rowCount() == len(ALERT_RULES), what="the Alerts view")
        page.select("local", "disk-low")  # mem-high's FAILED in red, not under the selection
        shot(window, "alerts")
    finally:
        hook.shutdown()
        hook.server_close()


def audit_shot(window, ws, wait, shot) -> None:
    """The Audit page: its filters (the last 24 hours), the chain verified, and one interrupted deploy.
    The session's own actions all finish, so that one is recorded as a Berth killed between a deploy's
    "started" event and its outcome leaves it (pid 0: no process of this session owns it)."""
    ws.audit.begin("deploy", server="local", model="iris", version="1.3.0", old="1.2.0", new="1.3.0", pid=0,
                   reason="retrain on October data")
    window.show_audit()
    page = window.audit_page
    page.filters.set_preset("24h")
    wait(lambda: page.model.rowCount() >= 4 and not page.tasks, what="the audit log")
    page.actions.verify()
    wait(lambda: page.status.isVisible(), what="the chain verification")
    shot(window, "audit")


def report_shots(ws, home: Path) -> None:
    """The session's audit log as a PDF report (Qt's PDF writer), its first and last pages as
    pictures (pdftoppm, from poppler-utils), as an operator would hand it on."""
    from app.audit.export import export_events
    from app.audit.query import AuditFilter
    from app.ui.audit.report_pdf import write_pdf

    if not shutil.which("pdftoppm"):
        print("  (no pdftoppm: install poppler-utils for the report screenshots)")
        return
    pdf = home / "report.pdf"
    export_events(ws.db, AuditFilter(), "pdf", pdf, exported_by="operator@berth-demo", pdf_writer=write_pdf)
    pages = int(next(line.split()[-1] for line in subprocess.run(["pdfinfo", str(pdf)], capture_output=True,
                                                               text=True).stdout.splitlines()
                     if line.startswith("Pages:")))
    for name, page in (("audit-report-title", 1), ("audit-report-table", pages)):
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", "-f", str(page), "-l", str(page), str(pdf),
                        str(OUT / name)], check=True)
        print(f"  {(OUT / name).relative_to(ROOT)}.png")


def html_shot(ws, home: Path) -> None:
    """The same log as the HTML report, as a browser shows it (headless Chromium, Debian's
    `chromium` package); skipped when there is none: nothing else needs a browser."""
    from app.audit.export import export_events
    from app.audit.query import AuditFilter

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not browser:
        print("  (no chromium: install it for the HTML report screenshot)")
        return
    html = home / "report.html"
    export_events(ws.db, AuditFilter(), "html", html, exported_by="operator@berth-demo")
    target = OUT / "audit-report-html.png"
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--hide-scrollbars", f"--screenshot={target}",
                           "--window-size=1280,2000", html.resolve().as_uri()], capture_output=True, text=True,
                          timeout=120)
    if done.returncode or not target.exists():
        print(f"  (chromium could not render the HTML report: {done.stderr.strip()[-300:]})")
        return
    print(f"  {target.relative_to(ROOT)}")


def monitor_shots(window, transport, wait, settle, shot, seconds=20.0) -> None:
    """The Monitor page after `seconds` of real sampling on `local`, with predictions sent to iris
    meanwhile (a steady trickle, then a burst), so the latency and requests/s curves have a story."""
    import http.client
    import threading

    from app.deploy.queries import status
    from app.ui.servers.fleet import ROLE_KIND

    port = status(transport, "iris")[0]["port"]
    body = (EXAMPLE / "example.json").read_bytes()
    stop = threading.Event()

    labels = {}

    def predictions():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        start = time.monotonic()
        n = 0
        while not stop.is_set():
            elapsed = time.monotonic() - start
            conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
            conn.getresponse().read()
            n += 1
            if n % 4 == 0:  # every fourth, one row with its own id: labelled later (the accuracy graph)
                _v, answered = predict_labelled(conn, f"mon-{n}", n)
                wrong = n % (6 if seconds * 0.5 < elapsed < seconds * 0.75 else 20) == 0  # worse in the burst
                labels[f"mon-{n}"] = "virginica" if wrong and answered != "virginica" else answered
            time.sleep(0.002 if seconds * 0.5 < elapsed < seconds * 0.75 else 0.05)  # a burst in the middle
        conn.close()

    sender = threading.Thread(target=predictions, daemon=True)
    fleet = window.fleet_model
    item = next(fleet.item(r) for r in range(fleet.rowCount()) if fleet.item(r).data(ROLE_KIND) == "monitor")
    window.fleet.setCurrentIndex(item.index())  # the operator clicks "Monitor" in the sidebar
    sender.start()
    try:
        settle(seconds)
    finally:
        stop.set()
        sender.join(15)
    for start in range(0, len(labels), 5000):
        post_labels(port, dict(list(labels.items())[start:start + 5000]))
    page = window.monitor_page
    wait(lambda: page.overview.row_of("local", "iris") >= 0, what="iris in the fleet overview")
    page.overview.refresh()
    shot(window, "monitor-overview")
    page.overview.open_requested.emit("local", "iris")  # what a click on iris's row does
    wait(lambda: len(page.graphs.markers) >= 3, what="the deploy markers")
    wait(lambda: page.graphs.labels.series, what="the accuracy per version")
    settle(1.2)
    page.graphs.hover(time.time() - seconds * 0.4)  # the readout an operator sees under the mouse
    shot(window, "monitor-model")


def fleet_shot(window, ws, wait, shot) -> None:
    """The fleet tree of a small fleet, grouped by environment in natural order, one server of which
    accepts TCP and never answers: its row says "not answering since ..." (the others are not up)."""
    import socket

    from app.store.servers import ServerConfig

    hole = socket.create_server(("127.0.0.1", 0), backlog=16)  # a host that hangs at the SSH banner
    try:
        for name, env in (("web10", "production"), ("web2", "production"), ("web1", "production"),
                          ("s2", "staging"), ("s10", "staging"), ("s1", "staging")):
            port = hole.getsockname()[1] if name == "web2" else 9
            ws.servers.save(ServerConfig(name=name, host="127.0.0.1", port=port, user="deploy",
                                         root="~/berth", environment=env))
        window.refresher.deadline_s = 3.0
        window.load_servers()
        window.fleet.select("local")
        wait(lambda: "web2" in window.refresher.stalled, timeout=30, what="web2 marked not answering")
        window.fleet.select("web2")
        window.fleet.selectionModel().clearSelection()  # its page shown, its row's own colours visible
        window.fleet.expandAll()
        shot(window, "fleet")
    finally:
        hole.close()


def policy_shot(window, home: Path, wait, shot) -> None:
    """The policy editor of an admin, with two edits waiting in the diff (saved: nothing; last shot)."""
    import getpass
    import json

    (home / "local" / "policy.json").write_text(json.dumps({"roles": {getpass.getuser(): {"*": "admin"},
                                                                      "@ops": {"*": "operator"}}}))
    window.fleet.select("local")
    page = window.server_page
    page.roles.forget()
    wait(lambda: page.role_label.text().startswith("you: admin"), what="the role on the server page")
    page.policy_button.click()
    dialog = page.policy_dialog
    dialog.resize(680, 480)
    wait(lambda: dialog.shown is not None, what="the policy")
    dialog.add_row("@data-science", "iris", "deployer")
    dialog.production.setChecked(True)
    shot(dialog, "policy")
    dialog.close()


if __name__ == "__main__":
    sys.exit(main())
