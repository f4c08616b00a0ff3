#!/usr/bin/env python3
"""Experiment router bench (docs/experiments.md): what the router adds to a request, against
calling the release directly and against nginx (Debian's) proxying to the same release, in the
same run; and whether a ten-times-slower B in shadow mode slows A's answers.

    .venv/bin/python bench/experiments.py [--requests N] [--seconds S] [--connections C]

Needs /usr/sbin/nginx (`apt-get install -y nginx-light`). A temp root gets, through the agent as
Berth deploys: `echo` (A and B answer at once) for 1 and 2; `solo` and `twin` (A sleeps 1 ms per
request, B 10 ms) for 3.

1. Latency at one connection: keep-alive http.client connections to the release port, to the
   router (an A/B experiment with B at 0 %, so every request goes to A through the router) and to
   nginx (proxy_pass to the release port over an upstream keep-alive pool), one request on each in
   turn so all three see the same machine; p50/p99 of each and what each adds over the release.
2. Throughput: C connections (threads in a client process of its own) for S seconds on each.
3. Shadow: `twin` in shadow mode (B gets a copy of each request, and is ten times slower),
   measured request by request in turn with `solo`'s router at B 0 % (A alone), so a loaded
   machine slows both alike.
Exit 0 when every request was answered, 1 otherwise."""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from agent_kit import call, deploy, make_bundle, stop_all  # noqa: E402

MODEL = '''
import time


class Model:
    def predict(self, data):
        time.sleep({sleep})
        return {{"y": data}}
'''

CLIENT = r'''
import http.client, json, sys, threading, time
port, connections, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
body = json.dumps({"x": 1}).encode()
counts, failures = [0] * connections, [0]
end = time.monotonic() + seconds
def run(i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while time.monotonic() < end:
        try:
            c.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
            r = c.getresponse(); r.read()
            if r.status != 200: failures[0] += 1
            counts[i] += 1
        except Exception:
            failures[0] += 1; c.close()
threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps({"rps": sum(counts) / seconds, "failures": failures[0]}))
'''

NGINX = '''
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx.error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    upstream release {{ server 127.0.0.1:{upstream}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://release; proxy_http_version 1.1; proxy_set_header Connection ""; }}
    }}
}}
'''


def latency(ports: dict[str, int], n: int) -> dict[str, dict]:
    """p50/p99 (ms) per target, one keep-alive connection each, one request on each in turn."""
    import http.client

    conns = {k: http.client.HTTPConnection("127.0.0.1", p, timeout=10) for k, p in ports.items()}
    times = {k: [] for k in ports}
    body = json.dumps({"x": 1}).encode()
    failures = 0
    for i in range(n + 50):
        for k, c in conns.items():
            t0 = time.perf_counter()
            c.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if i >= 50:  # the first 50 warm the pools up
                times[k].append((time.perf_counter() - t0) * 1000)
            failures += r.status != 200
    for c in conns.values():
        c.close()
    out = {k: {"p50": statistics.median(v), "p99": sorted(v)[int(len(v) * 0.99) - 1]} for k, v in times.items()}
    out["failures"] = failures
    return out


def throughput(port: int, connections: int, seconds: float) -> dict:
    out = subprocess.run([sys.executable, "-c", CLIENT, str(port), str(connections), str(seconds)],
                         capture_output=True, text=True, timeout=seconds + 60)
    return json.loads(out.stdout)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--connections", type=int, default=16)
    args = p.parse_args()
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp = Path(tempfile.mkdtemp(prefix="berth-bench-exp-"))
    root, nginx = tmp / "root", None
    ok = True
    try:
        # echo: A answers at once (the router's and nginx's own cost show); solo and twin: A 1 ms,
        # B 10 ms, solo's router at B 0 % (A alone) measured in turn with twin in shadow mode
        for name, a_s, b_s in (("echo", 0, 0), ("solo", 0.001, 0.01), ("twin", 0.001, 0.01)):
            for version, sleep in (("1.0.0", a_s), ("2.0.0", b_s)):
                folder = make_bundle(tmp / name / version, name=name, version=version,
                                     model_src=MODEL.format(sleep=sleep))
                assert deploy(root, folder)[1] is None
            assert call(root, "rollback", model=name, to="1.0.0")[1] is None
        st = {m["model"]: m for m in call(root, "status")[0]["models"]}["echo"]
        stable, release = st["port"], st["release_port"]
        from bench.runner_overhead import free_port

        nginx_port = free_port()
        (tmp / "nginx.conf").write_text(textwrap.dedent(NGINX.format(tmp=tmp, upstream=release, port=nginx_port)))
        nginx = subprocess.Popen([nginx_bin, "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],
                                 stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        _, error, _ = call(root, "experiment_start", model="echo", b="2.0.0", mode="ab", weight=0.0)
        assert error is None, error
        lat = latency({"release": release, "router": stable, "nginx": nginx_port}, args.requests)
        ok &= lat.pop("failures") == 0
        base = lat["release"]["p50"]
        print("one connection, %d requests each (ms):" % args.requests)
        print("  %-8s %8s %8s %10s" % ("target", "p50", "p99", "added p50"))
        for k, v in lat.items():
            print("  %-8s %8.3f %8.3f %10.3f" % (k, v["p50"], v["p99"], v["p50"] - base))
        added_router, added_nginx = lat["router"]["p50"] - base, lat["nginx"]["p50"] - base
        print("  router's added p50 / nginx's: %.2f (goal <= 2)" % (added_router / added_nginx if added_nginx > 0
                                                                     else float("inf")))
        print("%d connections, %g s each (requests/s):" % (args.connections, args.seconds))
        rps = {}
        for k, port in (("release", release), ("router", stable), ("nginx", nginx_port)):
            t = throughput(port, args.connections, args.seconds)
            ok &= t["failures"] == 0
            rps[k] = t["rps"]
            print("  %-8s %8.0f" % (k, t["rps"]))
        print("  router / nginx: %.2f (goal >= 0.6)" % (rps["router"] / rps["nginx"]))

        _, error, _ = call(root, "experiment_start", model="twin", b="2.0.0", mode="shadow")
        assert error is None, error
        _, error, _ = call(root, "experiment_start", model="solo", b="2.0.0", mode="ab", weight=0.0)
        assert error is None, error
        ports = {m["model"]: m["port"] for m in call(root, "status")[0]["models"]}
        both = latency({"alone": ports["solo"], "shadow": ports["twin"]}, args.requests)
        ok &= both.pop("failures") == 0
        st = call(root, "experiment_status", model="twin")[0]
        a, s = both["alone"], both["shadow"]
        print("shadow, B ten times slower (ms, %d requests; A alone: model solo's router, B at 0 %%): A alone "
              "p50 %.3f p99 %.3f; A with shadow p50 %.3f (%+.1f%%) p99 %.3f (%+.1f%%); B answered %d copies, %d "
              "dropped" % (args.requests, a["p50"], a["p99"], s["p50"], (s["p50"] / a["p50"] - 1) * 100, s["p99"],
                           (s["p99"] / a["p99"] - 1) * 100, st["b"]["requests"], st["agreement"]["dropped"]))
        for name in ("echo", "solo", "twin"):
            call(root, "experiment_stop", model=name)
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)
        from experiment_kit import stop_routers

        stop_routers(root)
        stop_all(root)
        shutil.rmtree(tmp, ignore_errors=True)
    print("all answered" if ok else "FAILED: some requests failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
