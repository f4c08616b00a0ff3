"""wrk (https://github.com/wg/wrk, Debian's `wrk`) as the load generator of bench/runner_overhead.py:
C, event-driven, so at 16 connections the client costs far less CPU than Python clients would on a
machine the servers share. Each run: req/s and the latency percentiles wrk measured."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def available() -> str | None:
    return shutil.which("wrk")


def script(tmp: Path, body: bytes) -> Path:
    """A wrk Lua script POSTing `body` as JSON on every request."""
    path = tmp / "post.lua"
    text = body.decode().replace("\\", "\\\\").replace('"', '\\"')
    path.write_text('wrk.method = "POST"\nwrk.body = "%s"\nwrk.headers["Content-Type"] = "application/json"\n' % text)
    return path


def run(port: int, lua: Path, connections: int, seconds: float, path: str = "/predict") -> dict:
    """{"rps", "p50", "p99" (seconds)} of one wrk run; RuntimeError on socket errors or non-2xx answers."""
    threads = 1 if connections == 1 else 2
    cmd = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % max(1, round(seconds)), "--latency",
           "-s", str(lua), "http://127.0.0.1:%d%s" % (port, path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    text = out.stdout
    if out.returncode != 0:
        raise RuntimeError("wrk failed (%d): %s" % (out.returncode, (out.stderr or text)[-500:]))
    for bad in ("Non-2xx or 3xx responses", "Socket errors"):
        if bad in text:
            raise RuntimeError("wrk on port %d: %s" % (port, [l for l in text.splitlines() if bad in l][0].strip()))
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", text).group(1))
    return {"rps": rps, "p50": _percentile(text, "50"), "p99": _percentile(text, "99")}


def _percentile(text: str, q: str) -> float:
    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s|m)\s*$" % q, text, re.M)
    if not m:
        raise RuntimeError("no %s%% latency in wrk's output:\n%s" % (q, text[-800:]))
    return float(m.group(1)) * UNITS[m.group(2)]
