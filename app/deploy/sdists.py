"""A requirement with no wheel for an offline server, only its source (an sdist): built into a wheel
on this computer (`pip wheel --no-deps --no-binary NAME`) and kept only when the result is pure
Python (`py3-none-any`, `py2.py3-none-any`), which runs on any server; a wheel built for this
computer's platform is refused, saying how to build it on a machine like the server instead.
The build runs the package's build code here: docs/decisions.md says why that is acceptable."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import OperationFailed
from .progress import Progress
from .wheelcache import WheelCache

MAX_BUILDS = 10  # per deploy: a closure of more sdists than this is not a quick fix
BUILD_TIMEOUT_S = 180  # a pure-Python sdist builds in seconds; one that compiles (SciPy) may take an hour


def is_pure(wheel_name: str) -> bool:
    """py3-none-any and py2.py3-none-any: any Python 3 on any platform."""
    parts = wheel_name[:-len(".whl")].split("-")
    if len(parts) < 5:
        return False
    pythons, abi, platform = parts[-3], parts[-2], parts[-1]
    return all(p.startswith("py") for p in pythons.split(".")) and abi == "none" and platform == "any"


def build_pure_wheel(requirement: str, name: str, cache: WheelCache, folder: Path, server: str, platform: str,
                     refused: str, emit: Callable[[Progress], None], timeout: float = BUILD_TIMEOUT_S) -> None:
    """Build `requirement` from its sdist into the cache, or raise OperationFailed: `refused` (the
    "no wheel" message) when it has no sdist either, else what went wrong and what to do."""
    emit(Progress("resolve", f"{requirement}: no wheel for {server}; building one from its source (sdist) on this "
                             "computer, kept only if it is pure Python"))
    tmp = tempfile.mkdtemp(prefix="berth-sdist-")
    try:
        cmd = [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-input", "--no-deps",
               "--no-binary", name, "--wheel-dir", tmp, requirement]
        code, out = _run(cmd, folder, timeout)
        if code is None:
            raise OperationFailed(f"{refused}. Its source (sdist) did not build into a wheel here within {timeout} s "
                                  "(it compiles code, so its wheel would be for this computer only anyway): build the "
                                  f"wheel on a machine like {server} and copy it into this computer's wheel cache "
                                  f"({cache.folder})", code="no_wheel")
        built = sorted(p for p in Path(tmp).iterdir() if p.name.endswith(".whl"))
        if code != 0 or not built:
            if "No matching distribution found" in out or "Could not find a version" in out:
                raise OperationFailed(refused, code="no_wheel")
            last = [line.strip() for line in out.splitlines() if line.strip()][-2:]
            raise OperationFailed(f"{refused}. Its source (sdist) did not build on this computer either: "
                                  f"{' | '.join(last) or 'no output'}", code="no_wheel")
        wheel = built[0]
        if not is_pure(wheel.name):
            raise OperationFailed(
                f"{requirement}: no wheel for {server}'s platform ({platform}), and its source builds a wheel for "
                f"this computer only ({wheel.name}), which may not run there; nothing was uploaded. Build the wheel "
                f"on a machine like {server} (`pip wheel --no-deps '{requirement}'`), copy it into this computer's "
                f"wheel cache ({cache.folder}) and deploy again, or let the server use an index "
                f"(`berth server set {server} --index online`, or a private index URL)", code="no_wheel")
        got = cache.take(wheel)
        emit(Progress("resolve", f"built {got.name} (pure Python) from {name}'s source; kept in the wheel cache"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(cmd: list[str], folder: Path, timeout: float) -> tuple[int | None, str]:
    """(exit code, output); (None, output so far) when it ran past `timeout`: pip and the build
    processes it started (its own session) are ended."""
    with subprocess.Popen(cmd, cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace", start_new_session=True) as proc:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            return None, out
    return proc.returncode, out
