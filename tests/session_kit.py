"""Helpers for the agent session's tests: find its processes the way an operator would (`ps`), make
a model that takes its time to start, and wait for what the journal says."""
import json
import time
from pathlib import Path

import psutil

from agent_kit import ECHO_MODEL, make_bundle

SLOW_MODEL = '''
import time


class Model:
    def __init__(self):
        time.sleep({delay})
        self.version = "{version}"

    def predict(self, data):
        return {{"version": self.version, "echo": data}}
'''


def session_pids(root: Path) -> list[int]:
    """The pids of the agent sessions serving `root` (`ps`: `... <root>/.berth/agent/<v>/agent.py <digest> session`)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        argv = p.info["cmdline"] or []
        if argv and argv[-1] == "session" and any(a.startswith(str(root)) and a.endswith("agent.py") for a in argv):
            found.append(p.pid)
    return found


def slow_bundle(folder: Path, version: str, delay: float) -> Path:
    return make_bundle(folder, name="echo", version=version, model_src=SLOW_MODEL.format(delay=delay, version=version))


def echo_bundle(folder: Path, version: str) -> Path:
    return make_bundle(folder, name="echo", version=version, model_src=ECHO_MODEL.format(version=version))


def journal(root: Path) -> list[dict]:
    path = root / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"waited {timeout} s for {what}")
