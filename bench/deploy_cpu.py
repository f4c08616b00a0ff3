#!/usr/bin/env python3
"""Where a group deploy's CPU goes: N real sshd's on loopback (bench/fleet.py's fleet), iris deployed
to all of them twice with `berth deploy --server 'fleet-*' --parallel P` (a first deploy, then a new
version over it), every process's CPU summed by kind while each deploy runs.

    .venv/bin/python bench/deploy_cpu.py [N] [--parallel P]      (N=10: ~40 s)

On a loopback fleet every server's side shares this machine's cores, so a group deploy's wall time is
bounded below by the CPU summed here / cores; the second deploy is the reference (same servers, same
run: the agent session is already up, the environment is reused). Kinds are read from each process's
command line: `session` (the agent session, what it runs in-process, and `python -m venv` when it
is counted apart), `scheduler`, `runner`, `cli` (`berth` itself), `keeper` (held connections), `sshd`.
A process that started and ended between two looks (every 50 ms) is missed: the sums are a floor.
"""
from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests"), str(HERE)]
from _kit import iris_copy, source_state, table  # noqa: E402
from fleet import GROUP, Fleet, add_all  # noqa: E402
from sshd import missing_tools  # noqa: E402

KINDS = ("scheduler", "runner", " session", "keeper", "-m venv", "sshd", "pip")


def kind(proc: psutil.Process, kinds: tuple = KINDS) -> str:
    """The first of `kinds` in its command line (stripped), `cli` for `berth` itself, else `other`."""
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return "other"
    for k in kinds:
        if k in cmd:
            return k.strip()
    return "cli" if " -m app" in cmd else "other"


class Watch:
    """Every process's CPU time, looked at every 50 ms while a deploy runs."""

    def __init__(self, kind_of=None):
        self.kind_of = kind_of or kind  # a process's kind, from its command line
        self.first: dict[int, tuple[str, float]] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _look(self) -> None:
        for p in psutil.process_iter():
            if p.pid == os.getpid():
                continue
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            used = t.user + t.system
            if p.pid not in self.first:
                self.first[p.pid] = (self.kind_of(p), used)
            self.last[p.pid] = used

    def _run(self) -> None:
        while not self._stop.is_set():
            self._look()
            self._stop.wait(0.05)

    def __enter__(self):
        self._look()  # what ran before counts from here
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def by_kind(self) -> collections.Counter:
        out = collections.Counter()
        for pid, (k, start) in self.first.items():
            out[k] += self.last[pid] - start
        return out


def deploy(fleet: Fleet, bundle: Path, parallel: int) -> tuple[float, collections.Counter]:
    with Watch() as w:
        took, _ = fleet.berth("deploy", str(bundle), "--server", GROUP, "--parallel", str(parallel))
        time.sleep(0.3)  # the last runner's and scheduler's start
    return took, w.by_kind()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", type=int, nargs="?", default=10, help="servers (default 10)")
    p.add_argument("--parallel", type=int, default=10, help="--parallel of the group deploy (default 10)")
    args = p.parse_args(argv)
    missing = missing_tools()
    if missing:
        print(f"deploy_cpu: needs {', '.join(missing)}: `apt-get install -y openssh-server`", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="berth-deploy-cpu-"))
    fleet = Fleet(folder / "fleet", args.n)
    try:
        fleet.start_sshds()
        add_all(fleet)
        bundle = iris_copy(folder / "iris")
        first = deploy(fleet, bundle, args.parallel)
        second = deploy(fleet, iris_copy(folder / "iris-1.0.1", version="1.0.1"), args.parallel)
    finally:
        fleet.stop()
        shutil.rmtree(folder, ignore_errors=True)
    kinds = sorted(set(first[1]) | set(second[1]), key=lambda k: -first[1][k])
    rows = [(f"{k}, CPU per server", f"{first[1][k] / args.n * 1000:.0f} ms", f"{second[1][k] / args.n * 1000:.0f} ms")
            for k in kinds if first[1][k] + second[1][k] >= 0.005 * args.n]
    total1, total2 = sum(first[1].values()), sum(second[1].values())
    rows += [("all, CPU per server", f"{total1 / args.n * 1000:.0f} ms", f"{total2 / args.n * 1000:.0f} ms"),
             ("wall", f"{first[0]:.2f} s", f"{second[0]:.2f} s"),
             ("CPU / cores (the floor of the wall on loopback)", f"{total1 / os.cpu_count():.2f} s",
              f"{total2 / os.cpu_count():.2f} s")]
    print(table(rows, ("figure", "first deploy", "new version over it (reference)")))
    print(f"first / reference, CPU: {total1 / total2:.2f}x; wall: {first[0] / second[0]:.2f}x")
    print(f"N={args.n}, --parallel {args.parallel}; {source_state()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
