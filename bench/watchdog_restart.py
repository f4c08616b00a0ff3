#!/usr/bin/env python3
"""Watchdog bench: from a SIGKILLed runner to its stable port answering again, and what clients
that connect meanwhile see. Deploys the echo model (tests/agent_kit.py) on a temp root, as the
agent does in-process (the deploy starts the scheduler and its watchdog), then R times: SIGKILL the
runner, at once send C requests on C new connections, and time each answer from the kill; count
the refused and failed ones (the watchdog keeps the listening socket: there should be none).
First, the idle scheduler's CPU over --idle-s seconds (its watchdog waits on the runner's pidfd),
beside the reference of the same run: a Python process that only wakes every 0.1 s (the old tick).

    .venv/bin/python bench/watchdog_restart.py [--repeat R] [--clients C] [--idle-s S]

Exit 0 when every request was answered, 1 otherwise. See bench/README.md.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

import psutil  # noqa: E402

from agent_kit import call, deploy, make_bundle, stop_all, wait_guarded  # noqa: E402
from app.agent import scheduler  # noqa: E402
from app.agent.layout import Root  # noqa: E402

TEN_HZ = "import time\nwhile True:\n    time.sleep(0.1)\n"


def cpu_percent(pid: int, seconds: float) -> float:
    """% of a core this process used over `seconds` (user + system)."""
    proc = psutil.Process(pid)
    t0, c0 = time.monotonic(), sum(proc.cpu_times()[:2])
    time.sleep(seconds)
    return 100 * (sum(proc.cpu_times()[:2]) - c0) / (time.monotonic() - t0)


def idle_figures(root: Path, seconds: float) -> str:
    wait_guarded(root)
    watchdog = cpu_percent(scheduler.alive(Root(str(root))), seconds)
    ref = subprocess.Popen([sys.executable, "-c", TEN_HZ])
    try:
        time.sleep(0.5)
        reference = cpu_percent(ref.pid, seconds)
    finally:
        ref.kill()
        ref.wait()
    ratio = watchdog / reference if reference else float("nan")
    return (f"idle scheduler (one running model) {watchdog:.2f} % of a core over {seconds:.0f} s; reference, a "
            f"process waking every 0.1 s: {reference:.2f} %; ratio {ratio:.2f}")


def status(root: Path) -> dict:
    return call(root, "status")[0]["models"][0]


def restarts(root: Path) -> int:
    events = [json.loads(line) for line in (root / "journal.jsonl").read_text().splitlines()]
    return sum(1 for e in events if e["action"] == "runner.restarted" and e["outcome"] == "ok")


def ask(port: int, killed_at: float, out: list, lock: threading.Lock) -> None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/predict", body=json.dumps({"x": 1}), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        conn.close()
        result = (time.monotonic() - killed_at, "ok" if response.status == 200 else f"HTTP {response.status}")
    except OSError as e:
        result = (time.monotonic() - killed_at, f"{type(e).__name__}: {e}")
    with lock:
        out.append(result)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--idle-s", type=float, default=10.0, help="seconds the idle scheduler's CPU is measured over")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="berth-watchdog-bench-") as tmp:
        root = Path(tmp) / "root"
        try:
            _, error, _ = deploy(root, make_bundle(Path(tmp) / "v1"))
            if error:
                print("deploy failed:", error["message"])
                return 1
            idle = idle_figures(root, args.idle_s)
            first, last, bad = [], [], []
            for round_ in range(args.repeat):
                st = status(root)
                if not st["pid"]:
                    print("not running:", st)
                    return 1
                # each kill a first crash (restarted at once): the fifth in 10 minutes would, rightly, end
                # in "gave up" (crashloop.py); the bench measures the restart, not the backoff
                (root / "models/echo/run/watchdog.json").unlink(missing_ok=True)
                wait_guarded(root)  # the watchdog holds its copy of the port's socket
                out, lock = [], threading.Lock()
                killed_at = time.monotonic()
                os.kill(st["pid"], signal.SIGKILL)
                threads = [threading.Thread(target=ask, args=(st["port"], killed_at, out, lock))
                           for _ in range(args.clients)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                bad += [what for _, what in out if what != "ok"]
                times = sorted(t for t, what in out if what == "ok")
                if times:
                    first.append(times[0])
                    last.append(times[-1])
                deadline = time.monotonic() + 10
                while restarts(root) < round_ + 1 and time.monotonic() < deadline:
                    time.sleep(0.05)  # journalled last, after its crash history was written

            def ms(values):
                return "median %.0f ms, min %.0f, max %.0f" % (
                    statistics.median(values) * 1000, min(values) * 1000, max(values) * 1000) if values else "none"
            print(f"{args.repeat} kills, {args.clients} new connections right after each")
            print(f"  SIGKILL to the first answer: {ms(first)}")
            print(f"  SIGKILL to the last answer:  {ms(last)}")
            print(f"  refused or failed: {len(bad)} of {args.repeat * args.clients}" + (f" ({bad[0]})" if bad else ""))
            print(f"  journal: {restarts(root)} runner.restarted")
            print(f"  {idle}")
            return 1 if bad or len(first) < args.repeat else 0
        finally:
            stop_all(root)


if __name__ == "__main__":
    sys.exit(main())
