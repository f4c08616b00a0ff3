"""Drive the agent in-process on a temporary root, the way Berth drives it over a transport:
put blobs in its store, then send it JSON commands. Bundles are made by the tests themselves."""
import io
import json
import os
import shutil
import textwrap
from pathlib import Path

from app.agent.main import main as agent_main
from app.bundle.content import content_sha256, list_files

ACTOR = {"user": "tester", "host": "testhost", "ssh_user": "tester"}

ECHO_MODEL = '''
class Model:
    def __init__(self):
        self.version = "{version}"

    def predict(self, data):
        return {{"version": self.version, "echo": data}}
'''


def make_bundle(folder: Path, name="echo", version="1.0.0", model_src=None, example=True, extra_toml="",
                input_check="off") -> Path:
    """input_check "off" by default: the echo model takes any JSON (tests send it 1, {"q": 1}...);
    None leaves [serve] out, so the runner checks requests against the example's shape."""
    folder.mkdir(parents=True, exist_ok=True)
    toml = f'[model]\nname = "{name}"\nversion = "{version}"\nentrypoint = "model:Model"\n'
    if example:
        toml += 'input_example = "example.json"\n'
        (folder / "example.json").write_text(example if isinstance(example, str) else '{"x": 1}')
    if input_check is not None:
        toml += f'[serve]\ninput_check = "{input_check}"\n'
    (folder / "berth.toml").write_text(toml + textwrap.dedent(extra_toml))
    (folder / "model.py").write_text(model_src if model_src is not None else ECHO_MODEL.format(version=version))
    return folder


def call(root: Path, command: str, **payload) -> tuple[dict | None, dict | None, list[dict]]:
    """Returns (result, error, events)."""
    out = io.StringIO()
    payload.setdefault("actor", ACTOR)
    agent_main([command], stdin=io.StringIO(json.dumps(dict(payload, root=str(root)))), stdout=out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    last = events[-1]
    if last["event"] == "result":
        return last["result"], None, events[:-1]
    return None, last, events[:-1]


def deploy_request(root: Path, folder: Path) -> dict:
    """Upload the folder's blobs the way the desktop does, and return a deploy request."""
    import tomllib

    files = list_files(folder)
    blobs = root / ".berth" / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copyfile(f.source, blobs / f.sha256)
    data = tomllib.loads((folder / "berth.toml").read_text())
    manifest = data["model"]
    serve = {k: v for k, v in data.get("serve", {}).items()
             if k in ("input_check", "input_schema", "port", "workers", "model_threads")}
    serve.setdefault("input_check", "on")  # as Manifest.to_dict writes it
    return {"model": manifest["name"], "version": manifest["version"], "sha256": content_sha256(files),
            "manifest": dict(manifest, health_timeout_s=15, **serve),
            "files": [{"path": f.path, "sha256": f.sha256, "mode": f.mode, "size": f.size} for f in files]}


def deploy(root: Path, folder: Path):
    return call(root, "deploy", **deploy_request(root, folder))


def http_json(port: int, method: str, path: str, body=None):
    from app.agent.health import request

    status, raw = request(port, method, path, None if body is None else json.dumps(body).encode())
    return status, json.loads(raw) if raw.strip().startswith((b"{", b"[")) else raw


def stop_all(root: Path):
    """Stop every runner under root, and the scheduler whose watchdog restarts them (test teardown:
    no process outlives its test)."""
    from app.agent.layout import Root
    from app.agent import runnerproc, scheduler, supervise

    r = Root(str(root))
    if Path(r.meta).is_dir():
        scheduler.stop(r)
        _stop_member_schedulers(Path(r.meta))
    for name in r.model_names():
        m = r.model(name)
        if Path(m.run).is_dir():
            for f in Path(m.run).glob("*.runner.json"):
                supervise.stop(m, f.name[: -len(".runner.json")])
            for pid in runnerproc.unrecorded_runners(m):  # a test that killed its agent mid-start
                supervise.stop_pid(pid)


def _stop_member_schedulers(meta: Path):
    """A shared root's members' schedulers (`.berth/scheduler-<login>.json`, app/agent/scheduler.py)."""
    import signal
    import time

    from app.agent.scheduler import is_scheduler_of

    root, pids = str(meta.parent), []
    for pid_file in meta.glob("scheduler-*.json"):
        try:
            pid = json.loads(pid_file.read_text())["pid"]
            if not is_scheduler_of(pid, root):  # a stale file's pid may be anyone's now
                continue
            os.kill(pid, signal.SIGTERM)  # all at once: each ends within its current sleep
            pids.append(pid)
        except (OSError, ValueError, KeyError):
            continue
    deadline = time.monotonic() + 10
    while any(is_scheduler_of(p, root) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if is_scheduler_of(pid, root):
            os.kill(pid, signal.SIGKILL)


def scheduler_only_for_the_watchdog(root: Path) -> bool:
    """No job or alert rule keeps the root's scheduler: it runs only while a model runs (its runner
    watchdog, app/agent/watchdog.py), and ends by itself once none does (tests/test_watchdog.py)."""
    from app.agent import alertstore, crashloop, scheduler
    from app.agent.jobstore import list_jobs
    from app.agent.layout import Root

    r = Root(str(root))
    return not list_jobs(r) and not alertstore.has_rules(r) and (scheduler.alive(r) is None or crashloop.supervised(r))


def wait_guarded(root: Path, model: str = "echo", timeout: float = 10.0) -> None:
    """Wait until the scheduler's watchdog holds its copy of the model's stable port (it takes it at
    its next tick after a start): from then on a killed runner's port queues instead of refusing."""
    import os
    import time

    from app.agent import endpoint, handoff
    from app.agent.layout import Root

    path = endpoint.keeper_file(Root(str(root)).meta)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply, fd = handoff.ask(path, "fd " + model, timeout=1.0)
        except OSError:
            reply, fd = None, None
        if fd is not None:
            os.close(fd)
        if reply == "ok":
            return
        time.sleep(0.02)
    raise AssertionError(f"the watchdog did not take {model}'s port within {timeout} s")
