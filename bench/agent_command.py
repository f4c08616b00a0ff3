#!/usr/bin/env python3
"""The cost of one agent command over SSH: one process per command (a new exec channel, the login
shell, python3 and the bootstrap's hashing each time: the old path) against the connection's agent
session (a line on a pipe), in the same run, on a loopback OpenSSH sshd; then a rollback of iris
(1.0.1 -> 1.0.0 -> 1.0.1) each way; last `status` on `local` both ways.

    .venv/bin/python bench/agent_command.py [--calls 40] [--rollbacks 3]

Goal (issue 23): a command under 20 ms over the session (from ~230 ms). Everything lives in a temp
folder (sshd, BERTH_HOME, the server root), removed at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT / "tests"), str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import _kit  # noqa: E402
from _kit import ratio, table  # noqa: E402

MODES = (("one process per command", False), ("agent session", True))


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def local_rows(root: Path, calls: int, medians: dict) -> list[tuple]:
    """`status` on `local` both ways: what the session would save there (it is off for local)."""
    from app.remote.local import LocalTransport

    rows = []
    for label, session in MODES:
        with LocalTransport(str(root)) as t:
            t.use_session = session
            timed(lambda: t.agent("status"), 3)
            ms = timed(lambda: t.agent("status"), calls)
        medians[("local status", session)] = statistics.median(ms)
        rows.append(("status (local)", label, f"{statistics.median(ms):.1f} ms", f"{p95(ms):.1f} ms"))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=40, help="calls of each command in each mode")
    ap.add_argument("--rollbacks", type=int, default=3, help="rollback pairs in each mode")
    args = ap.parse_args()

    from sshd import SshServer, missing_tools

    if missing_tools():
        print("bench/agent_command.py needs sshd and ssh-keygen (apt-get install openssh-server)")
        return 1
    work = Path(tempfile.mkdtemp(prefix="berth-agent-command-"))
    os.environ["BERTH_HOME"] = str(work / "home")
    from app.deploy.changes import change, run_to_end
    from app.deploy.deploy import Deploy
    from app.store.servers import ServerConfig
    from app.workspace import Workspace

    print(f"agent command bench: {args.calls} calls per command and mode, loopback sshd, {_kit.source_state()}, "
          f"{os.cpu_count()} cores")
    try:
        with SshServer(work / "sshd") as srv:
            ws = Workspace()
            ws.add_server(ServerConfig(name="box", host=srv.host, port=srv.port, user=srv.user,
                                       key_path=str(srv.key_path), root=str(work / "srv")), srv.fingerprint)
            with ws.connect("box") as t:
                for version in ("1.0.0", "1.0.1"):
                    run_to_end(Deploy(t, _kit.iris_copy(work / f"iris-{version}", version), ws.audit).run())
                rows, medians = [], {}
                for label, session in MODES:
                    t.use_session = session
                    for command in ("status", "hello"):
                        timed(lambda: t.agent(command), 3)  # warm: the session started, the caches hot
                        ms = timed(lambda: t.agent(command), args.calls)
                        medians[(command, session)] = statistics.median(ms)
                        rows.append((command, label, f"{statistics.median(ms):.1f} ms", f"{p95(ms):.1f} ms"))
                    seconds = []
                    for _ in range(args.rollbacks):
                        for to in ("1.0.0", "1.0.1"):
                            started = time.perf_counter()
                            run_to_end(change(t, ws.audit, "rollback", "iris", to=to))
                            seconds.append(time.perf_counter() - started)
                    medians[("rollback", session)] = statistics.median(seconds) * 1000
                    rows.append(("rollback iris", label, f"{statistics.median(seconds) * 1000:.0f} ms",
                                 f"{max(seconds) * 1000:.0f} ms (max)"))
                t.use_session = True
                run_to_end(change(t, ws.audit, "stop", "iris"))
        rows += local_rows(work / "local", args.calls, medians)
        print(table(rows, ("command", "path", "median", "p95")))
        print()
        for command in ("status", "hello", "rollback", "local status"):
            old, new = medians[(command, False)], medians[(command, True)]
            print(f"{command}: {old:.1f} ms -> {new:.1f} ms ({ratio(old, new)} faster)"
                  + (" (goal < 20 ms)" if command in ("status", "hello") else ""))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
