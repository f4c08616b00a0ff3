#!/usr/bin/env python3
"""Sampler cost bench: what the agent's `sample` command costs the server it watches (CPU and
memory of the sampler process), on `local` with one iris model deployed and serving a little
traffic, next to a bare sleeping Python (the interpreter floor) measured in the same run.

    .venv/bin/python bench/sampler_cost.py [--seconds 60] [--interval 1.0] [--rps 1] [--keep]

Everything happens under a fresh temp folder ($BERTH_HOME included); the iris runner is stopped at
the end (the `berth stop` path) and the bench checks that neither the sampler nor the runner is
left. Exit 0 when the measurement ran (whether or not the goals are met: the table says), 1 on a
failure. See bench/README.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT / "tests"), str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import _kit  # noqa: E402
from _kit import table  # noqa: E402

GOAL_CPU = 0.5  # % of one core
GOAL_RSS_MB = 15.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
NODE_EXPORTER = ("node_exporter (cited, NOT measured here): ~10-20 MB RSS is the figure usually quoted; "
                 "one secondary source says \"typically under 15 MB RSS and negligible CPU\" "
                 "(https://tokrepo.com/en/workflows/ea6dae1a-3f30-11f1-9bc6-00163e2b0d79). No primary "
                 "measurement was found; node_exporter is not installed here.")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="how long to measure (default 60)")
    p.add_argument("--interval", type=float, default=1.0, help="the sampler's interval (default 1.0)")
    p.add_argument("--rps", type=float, default=1.0,
                   help="predictions per second sent to iris meanwhile, so the latency path is exercised "
                        "(default 1; 0 for none)")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (printed) for inspection")
    args = p.parse_args(argv)
    if args.seconds < 5 or not 0.25 <= args.interval <= 60 or args.rps < 0:
        p.error("--seconds must be >= 5, --interval 0.25-60, --rps >= 0")
    return args


# -- /proc readings ----------------------------------------------------------------------------------

def cpu_ticks(pid: int) -> int:
    """utime + stime of the process, in clock ticks (1/CLK_TCK s)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def run_ns(pid: int) -> int | None:
    """Nanoseconds on a CPU from /proc/<pid>/schedstat (the main thread: both processes have one)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def sampler_pids(launcher: str) -> list[int]:
    needle, out = launcher.encode(), []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if needle in argv and b"sample" in argv:
                out.append(int(d))
    return out


class Watched:
    """CPU and memory of one process between `start()` and `stop()`, RSS polled every second."""

    def __init__(self, name: str, pid: int):
        self.name, self.pid = name, pid
        self.rss_kb: list[int] = []

    def start(self):
        self.t0, self.ticks0, self.ns0 = time.monotonic(), cpu_ticks(self.pid), run_ns(self.pid)
        self.startup_ticks = self.ticks0
        self.poll()

    def poll(self):
        self.rss_kb.append(status_kb(self.pid, "VmRSS"))

    def stop(self):
        self.t1, self.ticks1, self.ns1 = time.monotonic(), cpu_ticks(self.pid), run_ns(self.pid)
        self.hwm_kb = status_kb(self.pid, "VmHWM")
        self.poll()

    @property
    def wall(self):
        return self.t1 - self.t0

    @property
    def cpu_percent(self):
        return 100.0 * (self.ticks1 - self.ticks0) / CLK_TCK / self.wall

    @property
    def cpu_percent_ns(self):
        if self.ns0 is None or self.ns1 is None:
            return None
        return 100.0 * (self.ns1 - self.ns0) / 1e9 / self.wall

    @property
    def rss_mb(self):
        return self.rss_kb[-1] / 1024

    @property
    def rss_max_mb(self):
        return max(self.rss_kb) / 1024


# -- the run -------------------------------------------------------------------------------------------

def run(args, tmp: Path) -> dict:
    from agent_kit import http_json
    from app.deploy.changes import change, run_to_end
    from app.deploy.deploy import Deploy
    from app.workspace import Workspace

    ws = Workspace()
    out: dict = {"notes": []}
    with ws.connect("local") as t:
        out["python"] = t.python
        t0 = time.perf_counter()
        run_to_end(Deploy(t, _kit.iris_copy(tmp / "iris"), ws.audit).run())
        print(f"iris 1.0.0 deployed on local in {time.perf_counter() - t0:.1f} s (root {t.abs_root})", flush=True)
        try:
            status = {s["model"]: s for s in t.agent("status")["models"]}
            port = status["iris"]["port"]
            launcher = t.ensure_agent()
            n_ref = int(args.seconds) + 30
            ref = subprocess.Popen([t.python, "-c", f"import time; [time.sleep(1) for _ in range({n_ref})]"],
                                   env=_kit.clean_env(), stdin=subprocess.DEVNULL)
            stream = t.stream("sample", {"interval": args.interval, "count": 0})
            try:
                out.update(measure(args, stream, launcher, ref, port, http_json))
            finally:
                stream.close()
                ref.kill()
                ref.wait()
            time.sleep(0.2)
            left = sampler_pids(launcher)
            if left:
                out["notes"].append(f"sampler process(es) {left} still there after close()")
        finally:
            run_to_end(change(t, ws.audit, "stop", "iris"))
    return out


def measure(args, stream, launcher, ref, port, http_json) -> dict:
    events = iter(stream)
    started = time.monotonic()
    first = next(events)  # the agent has started and sent its first sample
    first_after = time.monotonic() - started
    [pid] = sampler_pids(launcher)
    sampler, floor = Watched("sampler", pid), Watched("bare python", ref.pid)
    sampler.startup_ticks = cpu_ticks(pid)
    received, last = [1], [first]
    stop = threading.Event()

    def consume():
        for e in events:  # ends when the stream is closed
            received[0] += 1
            last[0] = e
            if stop.is_set():
                return

    def traffic():
        body = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
        try:
            import json
            body = json.loads((_kit.IRIS / "example.json").read_text())
        except (OSError, ValueError):
            pass
        while not stop.wait(1.0 / args.rps):
            try:
                http_json(port, "POST", "/predict", body)
            except OSError:
                pass

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    sender = threading.Thread(target=traffic, daemon=True) if args.rps > 0 else None
    if sender:
        sender.start()
    sampler.start()
    floor.start()
    n0 = received[0]
    print(f"measuring the sampler (pid {pid}) and a bare sleeping python (pid {ref.pid}) for {args.seconds:g} s "
          f"at a {args.interval:g} s interval...", flush=True)
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        sampler.poll()
        floor.poll()
    sampler.stop()
    floor.stop()
    samples = received[0] - n0
    stop.set()
    model = last[0].get("models", {}).get("iris") or {}
    return {"sampler": sampler, "floor": floor, "samples": samples, "first_after": first_after,
            "startup_ms": 1000.0 * sampler.startup_ticks / CLK_TCK, "last_model": model}


# -- the report -----------------------------------------------------------------------------------------

def report(args, r: dict) -> str:
    s, f = r["sampler"], r["floor"]
    per_sample_ms = 1000.0 * (s.ticks1 - s.ticks0) / CLK_TCK / max(1, r["samples"])
    ns_pct = s.cpu_percent_ns
    per_sample_ms_ns = None if s.ns0 is None else (s.ns1 - s.ns0) / 1e6 / max(1, r["samples"])
    rows = [
        ("CPU, % of one core (/proc/pid/stat)", f"{s.cpu_percent:.3f}", f"{f.cpu_percent:.3f}",
         f"< {GOAL_CPU}", f"{s.cpu_percent / GOAL_CPU:.2f}x", "met" if s.cpu_percent < GOAL_CPU else "MISSED"),
        ("CPU, % of one core (schedstat, ns)", "-" if ns_pct is None else f"{ns_pct:.3f}",
         "-" if f.cpu_percent_ns is None else f"{f.cpu_percent_ns:.3f}", "", "", ""),
        ("RSS at the end, MB", f"{s.rss_mb:.1f}", f"{f.rss_mb:.1f}", f"< {GOAL_RSS_MB:g}",
         f"{s.rss_mb / GOAL_RSS_MB:.2f}x", "met" if s.rss_mb < GOAL_RSS_MB else "MISSED"),
        ("RSS max over the run, MB", f"{s.rss_max_mb:.1f}", f"{f.rss_max_mb:.1f}", "", "", ""),
        ("VmHWM (peak RSS since the exec), MB", f"{s.hwm_kb / 1024:.1f}", f"{f.hwm_kb / 1024:.1f}", "", "", ""),
    ]
    model = r["last_model"]
    lines = [
        "```",
        f"Berth sampler cost bench (bench/sampler_cost.py --seconds {args.seconds:g} --interval {args.interval:g} "
        f"--rps {args.rps:g}): {_kit.source_state()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        f"agent python {platform.python_version()} ({r['python']}); 1 model (iris) deployed on local, "
        f"{args.rps:g} prediction/s sent to it",
        f"measured over {s.wall:.1f} s, {r['samples']} samples received; the sampler's CPU from its first sample on "
        f"(start-up before it: {r['startup_ms']:.0f} ms CPU, first sample {r['first_after']:.2f} s after the call)",
        table(rows, ("", "sampler", "bare python", "goal", "ratio", "")),
        f"per sample: {per_sample_ms:.2f} ms CPU (stat ticks)"
        + ("" if per_sample_ms_ns is None else f", {per_sample_ms_ns:.2f} ms (schedstat)"),
        f"sampler - bare python floor: CPU {s.cpu_percent - f.cpu_percent:+.3f} % of a core, "
        f"RSS {s.rss_mb - f.rss_mb:+.1f} MB",
        f"last sample's iris: rss {model.get('rss_bytes', 0) / 1e6:.1f} MB, {model.get('requests_total')} requests, "
        f"latency {model.get('latency_ms')}",
        NODE_EXPORTER,
    ]
    lines += [f"note: {n}" for n in r["notes"]]
    lines.append("```")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    tmp = Path(tempfile.mkdtemp(prefix="berth-sampler-bench-"))
    os.environ["BERTH_HOME"] = str(tmp / "home")  # never the user's own Berth data
    started = time.perf_counter()
    rc = 0
    try:
        result = run(args, tmp)
        print("\n" + report(args, result))
        if result["notes"]:
            rc = 1
    except BaseException as e:  # noqa: BLE001 - any failure: say what, exit 1
        rc = 1
        if isinstance(e, KeyboardInterrupt):
            print("\ninterrupted", file=sys.stderr)
        else:
            traceback.print_exc()
            print(f"\nbench failed: {type(e).__name__}: {e}", file=sys.stderr)
    finally:
        from agent_kit import stop_all

        stop_all(tmp / "home" / "local")  # only does something if the bench failed before its own stop
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nbench {'finished' if rc == 0 else 'FAILED'} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
