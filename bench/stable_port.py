#!/usr/bin/env python3
"""Stable port bench: does serving on the model's stable port (a listening socket inherited from the
agent, docs/serving.md) cost anything at one connection? p50/p99 of sequential keep-alive requests
(http.client, a client process of its own) on, in the same run, interleaved:

  today     the runner of GIT_REF (default main) on its own port, as every runner served before
  release   this tree's runner on its private release port
  stable    the same runner process on the stable port

    .venv/bin/python bench/stable_port.py [--requests N] [--repeat R] [--baseline GIT_REF]

Exit 0 when every request was answered correctly, 1 otherwise. See bench/README.md.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import runner_overhead as ro  # noqa: E402 (the children, the release and the client are its)

from app.agent import endpoint, handoff  # noqa: E402


class Runner:
    def __init__(self, root: Path, release: Path, tmp: Path, name: str, stable: bool):
        self.port_file = tmp / f"{name}.port"
        self.control = tmp / f"{name}.ctl"
        cmd = [sys.executable, "-m", "app.agent.runner", "--release", str(release), "--port-file", str(self.port_file),
               "--request-log", str(tmp / f"{name}.requests.jsonl")]
        listener, fds = None, ()
        if stable:
            listener = endpoint.bind(ro.free_port())
            fds = (listener.fileno(),)
            cmd += ["--listen-fd", str(fds[0]), "--control", str(self.control)]
        env = dict(ro.child_env(), PYTHONPATH=str(root))
        self.log = open(tmp / f"{name}.log", "ab")
        self.proc = subprocess.Popen(cmd, cwd=release, env=env, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, pass_fds=fds)
        self.stable_port = listener.getsockname()[1] if listener else None
        if listener:
            listener.close()
        deadline = time.monotonic() + 30
        while not self.port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} runner did not start; see {tmp / (name + '.log')}")
            time.sleep(0.02)
        self.port = int(self.port_file.read_text())
        if stable:
            assert handoff.ask(str(self.control), "serve")[0] == "ok"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(15)
        self.log.close()


def p50_p99(times):
    s = sorted(times)
    return ro.percentile(s, 0.5) * 1000, ro.percentile(s, 0.99) * 1000


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--baseline", default="main", metavar="GIT_REF")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="berth-stable-bench-") as t:
        tmp = Path(t)
        _bundle, release = ro.make_release(tmp)
        today_root = ro.extract_baseline(args.baseline, tmp / "baseline")
        today = Runner(today_root, release, tmp, "today", stable=False)
        mine = Runner(ro.ROOT, release, tmp, "stable", stable=True)
        results = {"today": [], "release": [], "stable": []}
        try:
            for _ in range(args.repeat):
                for name, port in (("today", today.port), ("release", mine.port), ("stable", mine.stable_port)):
                    out = ro.run_child(["latency", port, args.requests, args.warmup], timeout=600)
                    results[name].append(p50_p99(out["times"]))
        finally:
            today.stop()
            mine.stop()
    print(f"1 connection, {args.requests} sequential requests per run, {args.repeat} runs interleaved; "
          f"today = the runner of {args.baseline}")
    print(f"{'':10} {'p50 ms (each run)':40} {'best p50':>9} {'median p50':>10} {'median p99':>10}")
    for name, runs in results.items():
        p50s = [r[0] for r in runs]
        print(f"{name:10} {' '.join(f'{v:.4f}' for v in p50s):40} {min(p50s):9.4f} {statistics.median(p50s):10.4f} "
              f"{statistics.median(r[1] for r in runs):10.4f}")
    for how, pick in (("best", min), ("median", statistics.median)):
        base = pick(r[0] for r in results["today"])
        stable = pick(r[0] for r in results["stable"])
        print(f"stable vs today, {how} p50: {100 * (stable - base) / base:+.1f} % (goal: within 5 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
