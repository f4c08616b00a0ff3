"""Helpers for the benches: bundles made at bench time, phase timing of Progress generators,
subprocess references, and the tables. Nothing here touches Berth's state by itself."""
from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IRIS = ROOT / "resources" / "examples" / "iris"

# The order in which a deploy reports its steps (app/deploy/progress.py); rows of the tables follow it.
PHASES = ["(open transport)", "(agent launch)", "check", "connect", "upload", "assemble", "venv", "install",
          "start", "health", "switch", "stop_previous", "prune"]


# -- bundles -----------------------------------------------------------------------------------

def iris_copy(dest: Path, version: str | None = None, name: str | None = None) -> Path:
    """A copy of the iris example, optionally with another version and/or model name."""
    shutil.copytree(IRIS, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    toml = dest / "berth.toml"
    text = toml.read_text()
    if version:
        text = re.sub(r'(?m)^version\s*=\s*"[^"]*"', f'version = "{version}"', text, count=1)
    if name:
        text = re.sub(r'(?m)^name\s*=\s*"[^"]*"', f'name = "{name}"', text, count=1)
    toml.write_text(text)
    return dest


def big_bundle(dest: Path, megabytes: int) -> Path:
    """iris plus `megabytes` MB of random bytes (incompressible, so no transport can cheat)."""
    iris_copy(dest, "1.0.0", name="irisbig")
    with open(dest / "weights.bin", "wb") as f:
        for _ in range(megabytes):
            f.write(os.urandom(1 << 20))
    return dest


WHEEL_PKG = "berthbenchdep"
WHEEL_VERSION = "0.1.0"
WHEEL_FILE = f"{WHEEL_PKG}-{WHEEL_VERSION}-py3-none-any.whl"


def build_wheel(out_dir: Path) -> Path:
    """A minimal, valid pure-Python wheel zipped by hand (no build backend, no network)."""
    dist = f"{WHEEL_PKG}-{WHEEL_VERSION}.dist-info"
    files = {
        f"{WHEEL_PKG}/__init__.py": b'"""Installed by the Berth deploy bench."""\n\n'
                                    b"def scale(xs, k=0.5):\n    return [float(x) * k for x in xs]\n",
        f"{dist}/METADATA": (f"Metadata-Version: 2.1\nName: {WHEEL_PKG}\nVersion: {WHEEL_VERSION}\n"
                             "Summary: tiny dependency for the Berth deploy bench\n").encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: berth-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / WHEEL_FILE
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


SCALER_MODEL = f'''"""A model whose one dependency comes from a wheel shipped inside the bundle."""
from {WHEEL_PKG} import scale


class Model:
    def predict(self, data):
        return {{"y": sum(scale(data["features"]))}}
'''


def wheel_bundle(dest: Path, version: str = "1.0.0") -> Path:
    """A bundle with a real, offline `install` phase: requirements.txt names ./wheels/<wheel>."""
    dest.mkdir(parents=True)
    build_wheel(dest / "wheels")
    (dest / "requirements.txt").write_text(f"./wheels/{WHEEL_FILE}\n")
    (dest / "model.py").write_text(SCALER_MODEL)
    (dest / "example.json").write_text('{"features": [1, 2, 3, 4]}\n')
    (dest / "berth.toml").write_text(
        '[model]\nname = "scaler"\n'
        f'version = "{version}"\n'
        'entrypoint = "model:Model"\n'
        'description = "Deploy bench: one dependency installed offline from a bundled wheel."\n'
        'python = ">=3.8"\n'
        'requirements = "requirements.txt"\n'
        'input_example = "example.json"\n'
        '\n[serve]\nruntime = "venv"\nhealth_timeout_s = 60\n')
    return dest


# -- timing ------------------------------------------------------------------------------------

@dataclass
class Timed:
    """Phases of one operation: step -> seconds, in the order they happened."""
    phases: dict = field(default_factory=dict)
    total: float = 0.0
    upload_bytes: int = 0
    transfer_s: float = 0.0  # first to last upload event: the bytes on the wire, without the agent's start
    log_lines: list = field(default_factory=list)
    result: object = None


def time_steps(make_gen, run_to_end, launch_row: bool = False) -> Timed:
    """Drive a Progress generator; a step lasts from its first event to the next step's first event
    (the last one to the generator's end). `launch_row` adds the time before the first event."""
    firsts: dict[str, float] = {}
    order: list[str] = []
    out = Timed()
    last_upload = [None]

    def on(p):
        now = time.perf_counter()
        if p.step not in firsts:
            firsts[p.step] = now
            order.append(p.step)
        if p.line is not None:
            out.log_lines.append(p.line)
        if p.step == "upload":
            last_upload[0] = now
            if p.total is not None:
                out.upload_bytes = p.total

    t0 = time.perf_counter()
    out.result = run_to_end(make_gen(), on)
    end = time.perf_counter()
    if launch_row and order:
        out.phases["(agent launch)"] = firsts[order[0]] - t0
    for i, step in enumerate(order):
        if step == "done":
            continue
        nxt = firsts[order[i + 1]] if i + 1 < len(order) else end
        out.phases[step] = nxt - firsts[step]
    if "upload" in firsts and last_upload[0] is not None:
        out.transfer_s = last_upload[0] - firsts["upload"]
    out.total = end - t0
    return out


def clean_env() -> dict:
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(var, None)
    return env


def timed_run(cmd, cwd=None) -> float:
    """Seconds for a subprocess run to completion (fails loudly on a non-zero exit)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=clean_env(), stdin=subprocess.DEVNULL, capture_output=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"reference command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
                           f"{proc.stdout.decode(errors='replace')[-800:]}{proc.stderr.decode(errors='replace')[-800:]}")
    return took


# -- statistics and tables -----------------------------------------------------------------------

class Samples:
    """(target, scenario, row) -> list of seconds over the repeats."""

    def __init__(self):
        self.data: dict[tuple, list[float]] = {}

    def add(self, key: tuple, value: float) -> None:
        self.data.setdefault(key, []).append(value)

    def get(self, key: tuple) -> list[float]:
        return self.data.get(key, [])

    def med(self, key: tuple) -> float | None:
        v = self.get(key)
        return statistics.median(v) if v else None


def fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:7.3f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "n/a"
    return f"{a / b:.2f}x"


def table(rows: list[tuple], headers: tuple) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda r: "  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(headers), line(tuple("-" * w for w in widths))] + [line(r) for r in rows])


def source_state() -> str:
    """"commit abc1234" (+ " + local changes" when tracked files differ): which code was measured."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip() or "?"
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        commit, dirty = "?", ""
    return f"commit {commit}" + (" + local changes" if dirty else "")
