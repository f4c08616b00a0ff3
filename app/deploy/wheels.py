"""An offline server's wheels, resolved on this computer for the server's Python and platform
(`pip download --only-binary=:all: --platform ... --python-version ... --implementation ... --abi
...`, the platform tags from the agent's `server_facts`), into the wheel cache (wheelcache.py).
A requirement with no wheel for that platform is said here, before anything is uploaded."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from app.formatting import human_bytes

from .errors import OperationFailed
from .progress import Progress
from .sdists import MAX_BUILDS, build_pure_wheel
from .wheelcache import CachedWheel, WheelCache

_NOT_FOUND = re.compile(r"Could not find a version that satisfies the requirement (\S+)(?: \(from versions: ([^)]*)\))?")
_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")
_DOWNLOADING = re.compile(r"^\s*(Downloading|Saved|File was already downloaded|Collecting|Processing)\b")
_SPEC = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)")


def download_command(facts: dict, requirements: str, dest: str, cache: Path) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
           "--only-binary=:all:", "--dest", dest, "--find-links", str(cache),
           "--python-version", facts["python_short"], "--implementation", facts["implementation"],
           "--abi", facts["abi"]]
    for tag in facts["platforms"]:
        cmd += ["--platform", tag]
    return cmd + ["-r", requirements]


def platform_text(facts: dict) -> str:
    """"Python 3.11 (cp311) on manylinux_2_36_x86_64": the platform a message names."""
    return f"Python {facts['python_short']} ({facts['abi']}) on {facts['platforms'][0]}"


def resolve(bundle_folder: Path, requirements: str, facts: dict, cache: WheelCache, server: str,
            emit: Callable[[Progress], None]) -> list[CachedWheel]:
    """The wheels (closure of the requirements) for `facts`' platform, each in the cache. The cache
    alone is tried first (`--no-index`): a second deploy with the same requirements asks no index
    (a range such as numpy>=2,<3 keeps the version cached until `berth cache clear`)."""
    emit(Progress("resolve", f"resolving {requirements} on this computer for {server}: {platform_text(facts)}"))
    cache.folder.mkdir(parents=True, exist_ok=True)
    had = {p.name for p in cache.wheels()}
    tmp = tempfile.mkdtemp(prefix="berth-wheels-")
    fetching = 0.0  # seconds pip spent asking the index (not the cache-only try)
    try:
        cmd = download_command(facts, requirements, tmp, cache.folder)
        code = 1
        if cache.wheels():
            code, _lines = _pip(cmd[:4] + ["--no-index"] + cmd[4:], bundle_folder, None)
            if code == 0:
                emit(Progress("resolve", "every wheel was in this computer's wheel cache: no index asked"))
            else:
                shutil.rmtree(tmp, ignore_errors=True)
                os.mkdir(tmp)
        built: set[str] = set()
        while code != 0:
            started = time.monotonic()
            code, lines = _pip(cmd, bundle_folder, emit)
            fetching += time.monotonic() - started
            if code == 0:
                break
            refused, wanted = _failure(lines, requirements, facts, server)
            name = _SPEC.match(wanted).group(1).lower() if wanted and _SPEC.match(wanted) else None
            if name is None or name in built or len(built) >= MAX_BUILDS:
                raise OperationFailed(refused, code="no_wheel") from None
            build_pure_wheel(wanted, name, cache, bundle_folder, server, platform_text(facts), refused, emit)
            built.add(name)  # then resolve again: the cache (a --find-links) now has its wheel
            shutil.rmtree(tmp, ignore_errors=True)
            os.mkdir(tmp)
        got = [cache.take(p) for p in sorted(Path(tmp).iterdir()) if p.name.endswith(".whl")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cache.evict({w.name for w in got})
    emit(Progress("resolve", f"{len(got)} wheel(s), {human_bytes(sum(w.size for w in got))}, for {platform_text(facts)}"
                             f"{downloaded_text([w for w in got if w.name not in had], fetching)}"))
    return got


def downloaded_text(new: list[CachedWheel], seconds: float) -> str:
    """"; downloaded 3 (66.1 MB) in 12.0 s, 5.5 MB/s": what came from the index this time."""
    if not new:
        return "; nothing downloaded (all from the wheel cache)"
    size = sum(w.size for w in new)
    rate = f", {human_bytes(size / seconds)}/s" if seconds >= 0.05 else ""
    return f"; downloaded {len(new)} ({human_bytes(size)}) in {seconds:.1f} s{rate}"


def _pip(cmd: list[str], folder: Path, emit: Callable[[Progress], None] | None) -> tuple[int, list[str]]:
    """pip's exit code and output lines; its download lines go to `emit` as they come."""
    env = dict(os.environ, PIP_NO_INPUT="1", PYTHONUNBUFFERED="1")
    lines = []
    with subprocess.Popen(cmd, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            lines.append(line)
            if emit is not None and _DOWNLOADING.match(line):
                emit(Progress("download", line=line.strip()))
    return proc.returncode, lines


def _failure(lines: list[str], requirements: str, facts: dict, server: str) -> tuple[str, str | None]:
    """(one line naming the package, the version asked and the platform; the requirement pip could
    not satisfy, or None when pip failed otherwise)."""
    wanted, versions = None, None
    for line in lines:
        m = _NOT_FOUND.search(line)
        if m:
            wanted, versions = m.group(1), m.group(2)
        m = _NO_MATCH.search(line)
        if m and wanted is None:
            wanted = m.group(1)
    if wanted is None:
        last = [l.strip() for l in lines if l.strip()][-3:]
        return (f"resolving {requirements} for {server} on this computer failed: {' | '.join(last) or 'no output'}; "
                "nothing was uploaded (this computer needs its package index, or the wheels in its cache)"), None
    m = _SPEC.match(wanted)
    name, spec = (m.group(1), m.group(2) or "any version") if m else (wanted, "any version")
    seen = f"versions with a wheel there: {versions}" if versions and versions != "none" else \
        "no version of it has such a wheel"
    return (f"{requirements}: no wheel of {name} {spec} for {server}'s platform ({platform_text(facts)}), nor a "
            f"source (sdist) that builds a pure-Python one; {seen}; nothing was uploaded. Pick a version that has "
            f"one, put a wheel built on a machine like {server} into this computer's wheel cache, or let the "
            f"server use an index (`berth server set {server} --index online`)"), wanted
