#!/usr/bin/env python3
"""Stable port bench: does serving on the model's stable port (a listening socket inherited from the
agent, docs/serving.md) cost anything at one connection? p50/p99 of sequential keep-alive requests
(http.client, a client process of its own, one connection per port, one request on each in turn, so
the three are measured under the same conditions) on, in the same run:

  today     the runner of GIT_REF (default main) on its own port, as every runner served before
  release   this tree's runner on its private release port
  stable    the same runner process on the stable port

    .venv/bin/python bench/stable_port.py [--requests N] [--repeat R] [--baseline GIT_REF]

Exit 0 when every request was answered correctly, 1 otherwise. See bench/README.md.
"""
from __future__ import annotations

import argparse
import json
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


def paired_latency(ports, requests, warmup):
    """One keep-alive http.client connection per port, one request on each in turn (which one goes
    first rotates): the ports are
    measured under the same conditions, request by request (a shared machine's noise hits all)."""
    import http.client

    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for port in ports]
    times = [[] for _ in ports]
    perf = time.perf_counter
    n = len(conns)
    for i in range(warmup + requests):
        for j in [(i + k) % n for k in range(n)]:  # each port first in turn: no place in the round is favoured
            conn = conns[j]
            t0 = perf()
            conn.request("POST", "/predict", ro.BODY, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
            took = perf() - t0
            if resp.status != 200:
                raise ValueError("status %d: %r" % (resp.status, body[:200]))
            if i >= warmup:
                times[j].append(took)
    return times


def run_paired(ports, requests, warmup):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--paired", str(requests), str(warmup)] + [str(p) for p in ports]
    proc = subprocess.run(cmd, env=ro.child_env(), stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError("client failed:\n%s" % proc.stderr.decode(errors="replace")[-2000:])
    return json.loads(proc.stdout)


def p50_p99(times):
    s = sorted(times)
    return ro.percentile(s, 0.5) * 1000, ro.percentile(s, 0.99) * 1000


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--paired"]:
        print(json.dumps(paired_latency([int(a) for a in argv[3:]], int(argv[1]), int(argv[2]))))
        return 0
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
                runs = run_paired([today.port, mine.port, mine.stable_port], args.requests, args.warmup)
                for name, times in zip(("today", "release", "stable"), runs):
                    results[name].append(p50_p99(times))
        finally:
            today.stop()
            mine.stop()
    print(f"1 connection per port, {args.requests} sequential requests per port per run, the ports in turn, "
          f"{args.repeat} runs; "
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
