#!/usr/bin/env python3
"""Held connections (issue 23): `berth status --json` and `berth monitor --once --json` with a fresh
SSH connection per call against the same through the keepers that hold them between calls (app/remote/held.py), on N real sshd's on
loopback (bench/fleet.py's Fleet: own ports, host keys, roots; no model deployed).

    .venv/bin/python bench/held_connection.py [N ...] [--repeat 5]     # default: 1 20

Per N, over the SSH servers (`--server 'fleet-*'`): `fresh` (BERTH_SSH_PERSIST=0: handshake, login
and agent session on every call), the `first` held call (it starts the keeper and opens the
connections), then `held` (the keeper answers); beside them `berth server list`, the CLI's own start
with no server. Median wall time and CPU (the CLI process and its children, plus the keeper
process's) of --repeat calls each, and sshd's logins per call; then the keeper process's RSS,
threads and open files with N connections held.
Everything lives in one temp folder, removed at the end with every keeper and sshd stopped.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]
from fleet import Fleet, add_all, missing_tools  # noqa: E402
from _kit import table  # noqa: E402


def logins(fleet: Fleet) -> int:
    return sum(s.log_path.read_text().count("Accepted publickey") for s in fleet.sshds)


def keeper_cpu(fleet: Fleet) -> float:
    """CPU seconds the keeper process has used so far (0: none runs)."""
    _, out = fleet.berth("server", "connections", "--json")
    pids = {k["pid"] for k in json.loads(out)}
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def timed(fleet: Fleet, persist: str, repeat: int, *argv: str) -> tuple[float, float, float]:
    """(median wall s, median CPU s of the CLI process and the keeper, logins per call) of `berth ARGV`."""
    fleet.env["BERTH_SSH_PERSIST"] = persist
    before, walls, cpus = logins(fleet), [], []
    for _ in range(repeat):
        k0 = keeper_cpu(fleet) if persist != "0" else 0.0
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        walls.append(fleet.berth(*argv)[0])
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        k1 = keeper_cpu(fleet) if persist != "0" else 0.0
        cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime + k1 - k0)
    return statistics.median(walls), statistics.median(cpus), (logins(fleet) - before) / repeat


COMMANDS = {"berth status --json": ("status", "--json", "--server", "fleet-*"),  # the SSH servers only
            "berth monitor --once --json": ("monitor", "--once", "--json", "--server", "fleet-*")}


def keeper_process(fleet: Fleet) -> str:
    """The keeper process as N connections leave it: RSS, threads, open files (limits at N=100)."""
    _, out = fleet.berth("server", "connections", "--json")
    held = json.loads(out)
    pids = {k["pid"] for k in held}
    said = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            said.append(f"pid {pid}: {p.memory_info().rss / 2**20:.0f} MB RSS, {p.num_threads()} threads, "
                        f"{p.num_fds()} open files (limit {p.rlimit(psutil.RLIMIT_NOFILE)[0]})")
        except psutil.Error as e:
            said.append(f"pid {pid}: {e}")
    return f"{len(held)} held connection(s) of {fleet.n}; " + ("; ".join(said) or "no keeper")


def one_size(n: int, repeat: int, folder: Path) -> tuple[list[tuple], str]:
    fleet = Fleet(folder / f"n{n}", n)
    try:
        fleet.start_sshds()
        add_all(fleet)
        floor = timed(fleet, "0", repeat, "server", "list", "--json")

        def row(command, connection, t):
            return n, command, connection, f"{t[0]:.2f}", f"{t[1]:.2f}", f"{t[2]:g}"

        rows = [row("`berth server list`", "none (the CLI alone)", floor)]
        for label, argv in COMMANDS.items():
            fresh = timed(fleet, "0", repeat, *argv)
            first = timed(fleet, "600", 1, *argv)
            held = timed(fleet, "600", repeat, *argv)
            rows += [row(label, "fresh", fresh), row(label, "first held (opens what is not held)", first),
                     row(label, "held", held),
                     (n, label, "fresh / held", f"{fresh[0] / held[0]:.1f}x", f"{fresh[1] / max(held[1], 1e-3):.1f}x",
                      "")]
        return rows, f"N={n}: " + keeper_process(fleet)
    finally:
        try:
            fleet.berth("server", "disconnect", "--all")
        finally:
            fleet.stop()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sizes", nargs="*", type=int, default=[1, 20])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    if missing_tools():
        print(f"needs {', '.join(missing_tools())}", file=sys.stderr)
        return 2
    rows: list[tuple] = []
    keepers = []
    with tempfile.TemporaryDirectory(prefix="berth-held-") as tmp:
        for n in args.sizes:
            size_rows, keeper = one_size(n, args.repeat, Path(tmp))
            rows += size_rows
            keepers.append(keeper)
            print(keeper, flush=True)
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; --repeat {args.repeat}")
    print(table(rows, ("N", "command", "connection", "wall s", "CPU s", "sshd logins per call")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
