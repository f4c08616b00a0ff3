"""`berth bundle profile`: how much memory and CPU a bundle needs, measured on this computer before a
server is asked to hold it. The bundle is deployed into a temporary `local` root (its own
virtualenv, the real runner, as on a server), loaded with its own input example at one connection
and at C, and measured from outside: RSS and CPU time of the runner's processes (psutil), latency
at the client. The trial is not a change of any server, so it stays out of the audit log."""
from __future__ import annotations

import json
import os
import platform
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import sqlite_utils

from app.audit.log import AuditLog
from app.bundle.tempdirs import make_temp
from app.deploy.leftovers import end_processes_naming
from app.remote.local import LocalTransport
from app.store.db import migrate

from .changes import change, run_to_end
from .deploy import Deploy
from .errors import OperationFailed
from .loadgen import LoadResult, run_load
from .progress import Progress
from .queries import status

MB = 1024 * 1024


def profile_bundle(path: Path, *, seconds: float = 5.0, connections: int = 8,
                   on_progress: Callable[[Progress], None] = lambda p: None) -> dict:
    if seconds <= 0 or connections < 1:
        raise OperationFailed("--seconds must be above 0 and --connections at least 1", code="usage")
    temp = make_temp("profile")
    root = temp / "root"
    transport = LocalTransport(str(root))
    transport.name = "a trial root on this computer"  # not the `local` server: its progress says so
    trial_db = sqlite_utils.Database(memory=True)
    migrate(trial_db)
    audit = AuditLog(trial_db)
    try:
        job = Deploy(transport, path, audit, keep=1)
        load_s = _deploy_timed(job, on_progress)
        model, version, sha = job.trail.facts["model"], job.result["version"], job.trail.facts["sha256"]
        row = status(transport, model)[0]
        example = transport.agent("example", {"model": model}).get("example")
        if example is None:
            raise OperationFailed(f"{model} {version} has no input example to load it with: add "
                                  "input_example = \"example.json\" to berth.toml's [model]", code="usage")
        body = json.dumps(example).encode()
        proc = psutil.Process(int(row["pid"]))
        rss_after = _rss(proc)
        on_progress(Progress("profile", f"1 connection for {seconds:g} s"))
        one, cpu_one, peak_one = _measured(proc, lambda: run_load(row["release_port"] or row["port"], body, 1, seconds))
        on_progress(Progress("profile", f"{connections} connections for {seconds:g} s"))
        many, cpu_many, peak_many = _measured(
            proc, lambda: run_load(row["release_port"] or row["port"], body, connections, seconds))
        for r in (one, many):
            if not r.requests:
                raise OperationFailed(f"{model} {version} answered no request with its input example "
                                      f"({r.first_failure or 'no answer'}): `berth predict` shows why", code="profile")
        cpu_ms = 1000 * (cpu_one + cpu_many) / (one.requests + many.requests)
        release_dir = root / "models" / model / "releases" / version
        return {
            "model": model, "version": version, "bundle_sha256": sha,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "measured_on": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "seconds": seconds, "connections": connections,
            "load_s": round(load_s, 3),
            "rss_after_load_bytes": rss_after, "rss_peak_bytes": max(rss_after, peak_one, peak_many),
            "cpu_ms_per_request": round(cpu_ms, 4),
            "requests_per_core_s": round(1000 / cpu_ms) if cpu_ms else None,
            "one": _figures(one), "many": _figures(many),
            "disk_bytes": _disk_bytes(release_dir),
            "venv_bytes": _disk_bytes(release_dir / ".venv"),
        }
    finally:
        _stop_runners(transport, audit, root)
        shutil.rmtree(temp, ignore_errors=True)


def _deploy_timed(job: Deploy, on_progress) -> float:
    """Run the deploy; the load time is from its runner's start to its first healthy answer."""
    started = answered = None
    for p in job.run():
        on_progress(p)
        if p.step == "start" and started is None:
            started = time.monotonic()
        elif p.step == "health" and "answering" in p.message and answered is None:
            answered = time.monotonic()
    return (answered - started) if started and answered else 0.0


def _measured(proc: psutil.Process, load: Callable[[], LoadResult]) -> tuple[LoadResult, float, int]:
    """(the load's result, CPU seconds the runner's processes spent, their peak RSS meanwhile)."""
    peak, done = [0], threading.Event()

    def watch():
        while not done.wait(0.05):
            peak[0] = max(peak[0], _rss(proc))

    watcher = threading.Thread(target=watch, name="profile-rss", daemon=True)
    before = _cpu(proc)
    watcher.start()
    try:
        result = load()
    finally:
        done.set()
        watcher.join(5)
    return result, _cpu(proc) - before, peak[0]


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return [proc]


def _rss(proc: psutil.Process) -> int:
    total = 0
    for p in _tree(proc):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _cpu(proc: psutil.Process) -> float:
    total = 0.0
    for p in _tree(proc):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _figures(r: LoadResult) -> dict:
    return {"connections": r.connections, "requests": r.requests, "failures": r.failures,
            "requests_per_s": round(r.rate, 1), "p50_ms": _ms(r.percentile(50)), "p99_ms": _ms(r.percentile(99))}


def _ms(v):
    return None if v is None else round(v, 3)


def _disk_bytes(folder: Path) -> int:
    """Allocated size of the folder's files, each inode once, symlinks not followed (a venv links its
    interpreter to the system's)."""
    seen, total = set(), 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def _stop_runners(transport: LocalTransport, audit: AuditLog, root: Path) -> None:
    """The trial's runners, then its scheduler (a deploy starts one for the runner watchdog): nothing
    of the trial outlives its root."""
    from app.agent import scheduler
    from app.agent.layout import Root

    try:
        for row in status(transport):
            if row.get("state") == "running":
                run_to_end(change(transport, audit, "stop", row["model"]))
        scheduler.stop(Root(str(root)))
    except Exception:  # noqa: BLE001 (the temp root goes anyway; what is left of it is ended below)
        pass
    # whatever still runs from the trial root (a scheduler that had not yet written its pid file when
    # it was asked to stop, a runner whose stop failed) would hold a port or a CPU after the root is gone
    end_processes_naming(str(root))
