#!/usr/bin/env python3
"""A console's start against N loopback servers, and where that start's CPU goes on the machine:
bench/fleet.py's fleet (iris deployed to each by one group deploy), then console starts of
`--seconds` each (bench/_fleet_console.py), alternating between the source trees given (the
reference first: e.g. a `git worktree` of the commit before a change), every process's CPU summed
by kind while each console runs (bench/deploy_cpu.py's Watch: every 50 ms, so a floor).

    .venv/bin/python bench/console_start.py 100 --ref /tmp/old-tree --starts 2     (~20 min)
    .venv/bin/python bench/console_start.py 20                                      (this tree only)

Per tree, the median over its starts of: the slowest server to show its models and its first
sample (seconds from the window's first paint), the machine's busy CPU over the start, the CPU by
kind per server (`session`: the agents' sessions; `sample`: one-shot sampler processes; `other`
holds what the 50-ms looks missed, e.g. login shells), and what the servers' agent processes hold
at the end (RSS of the sessions and of the samplers). Each tree's console installs its own agent on
the servers (content-addressed): the first start of each tree is a warm-up, not counted.
"""
from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests"), str(HERE)]
from _kit import iris_copy, source_state, table  # noqa: E402
from deploy_cpu import Watch, kind  # noqa: E402
from fleet import Fleet, add_all, deploy_all  # noqa: E402
from sshd import missing_tools  # noqa: E402

KINDS = ("fleet_console", "scheduler", "runner", " session", " sample", "keeper", "sshd")  # the console: bench/_fleet_console.py


def busy_cpu() -> float:
    """This machine's busy CPU seconds so far (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def agent_rss(folder: Path) -> dict[str, tuple[int, int]]:
    """(count, RSS bytes) of the agents' sessions and one-shot samplers running now under `folder`."""
    out: dict[str, tuple[int, int]] = {}
    for p in psutil.process_iter(["cmdline", "memory_info"]):
        argv = p.info["cmdline"] or []
        if argv and argv[-1] in ("session", "sample") and any(a.endswith("agent.py") and a.startswith(str(folder))
                                                              for a in argv):
            n, rss = out.get(argv[-1], (0, 0))
            out[argv[-1]] = (n + 1, rss + p.info["memory_info"].rss)
    return out


def start(fleet: Fleet, tree: Path, seconds: float) -> dict:
    """One console start with `tree`'s code; its figures."""
    out = fleet.folder / "console.json"
    out.unlink(missing_ok=True)
    env = dict(fleet.env, PYTHONPATH=str(tree))
    rss: dict = {}
    looked = threading.Timer(seconds - 5, lambda: rss.update(agent_rss(fleet.folder)))
    before = busy_cpu()
    with Watch(functools.partial(kind, kinds=KINDS)) as w:
        with open(fleet.folder / "console.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, str(tree / "bench" / "_fleet_console.py"), str(out), str(seconds),
                                     "10", *fleet.names], cwd=tree, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            looked.start()
            code = proc.wait(timeout=seconds + 120)
            looked.join()
    busy = busy_cpu() - before
    if code != 0 or not out.exists():
        raise RuntimeError(f"the console ({tree}) ended with {code}: see {fleet.folder / 'console.log'}")
    r = json.loads(out.read_text())
    missing = set(fleet.names) - set(r["models_at"]) | set(fleet.names) - set(r["sample_at"])
    return {"models": max(r["models_at"].values(), default=None), "sample": max(r["sample_at"].values(), default=None),
            "never": len(missing), "busy": busy, "by_kind": w.by_kind(), "rss": rss}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", type=int, nargs="?", default=20, help="servers (default 20)")
    p.add_argument("--ref", type=Path, help="the reference source tree (e.g. a git worktree of the commit before)")
    p.add_argument("--starts", type=int, default=2, help="counted console starts per tree (default 2)")
    p.add_argument("--seconds", type=float, default=75.0, help="each console's run (default 75)")
    args = p.parse_args(argv)
    if missing_tools():
        print("console_start: needs openssh-server: `apt-get install -y openssh-server`", file=sys.stderr)
        return 2
    trees = ([("reference", args.ref.resolve())] if args.ref else []) + [("this tree", HERE.parent)]
    folder = Path(tempfile.mkdtemp(prefix="berth-console-start-"))
    fleet = Fleet(folder / "fleet", args.n)
    runs: dict[str, list[dict]] = collections.defaultdict(list)
    try:
        fleet.start_sshds()
        add_all(fleet)
        deploy_all(fleet, iris_copy(folder / "iris"), True, 10)
        for k in range(args.starts + 1):
            for label, tree in trees:
                r = start(fleet, tree, args.seconds)
                print(f"  {label} start {k}{' (warm-up)' if k == 0 else ''}: slowest models {r['models']:.1f} s, "
                      f"sample {r['sample']:.1f} s, never {r['never']}, busy CPU {r['busy']:.1f} s; "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
                if k:
                    runs[label].append(r)
    finally:
        fleet.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(table(rows(runs, args.n), ("figure (median of starts)", *runs)))
    print(f"N={args.n}, {args.starts} start(s) of {args.seconds:g} s per tree after a warm-up; {source_state()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    return 0


def rows(runs: dict[str, list[dict]], n: int) -> list[tuple]:
    def med(label, fn):
        return statistics.median(fn(r) for r in runs[label])

    out = [("slowest server's models", *(f"{med(t, lambda r: r['models']):.1f} s" for t in runs)),
           ("slowest server's first sample", *(f"{med(t, lambda r: r['sample']):.1f} s" for t in runs)),
           ("servers never shown", *(f"{med(t, lambda r: r['never']):g}" for t in runs)),
           ("machine's busy CPU over the start", *(f"{med(t, lambda r: r['busy']):.1f} s" for t in runs))]
    kinds = sorted({k for rs in runs.values() for r in rs for k in r["by_kind"]})
    for k in kinds:
        out.append((f"  {k}, per server", *(f"{1000 * med(t, lambda r: r['by_kind'][k]) / n:.0f} ms" for t in runs)))
    for what in ("session", "sample"):
        out.append((f"agent {what} processes at the end, RSS", *(
            f"{med(t, lambda r: r['rss'].get(what, (0, 0))[0]):g}, "
            f"{med(t, lambda r: r['rss'].get(what, (0, 0))[1]) / 2**20:.0f} MB" for t in runs)))
    return out


if __name__ == "__main__":
    sys.exit(main())
