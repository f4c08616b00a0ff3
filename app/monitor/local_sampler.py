"""Samples of the built-in `local` server, taken in Berth's own process with psutil: the same schema
as the agent's `sample` command (docs/monitoring.md), so the views and the history cannot tell them
apart. Runners are found as the agent finds them (current release, its runner record, pid still ours)
and their traffic comes from /metrics through the shared RunnerMeter.

    s = LocalSampler()              # root: the `local` server's Berth root (default)
    s.sample()                      # the first call waits FIRST_INTERVAL to have something to compare
"""
from __future__ import annotations

import http.client
import os
import time

import psutil

from app.agent import supervise
from app.agent.layout import Root
from app.agent.runnermeter import RunnerMeter

FIRST_INTERVAL = 0.25
METRICS_TIMEOUT = 0.5
TRAFFIC_KEYS = ("requests_total", "errors_total", "requests_per_s", "errors_per_s", "latency_ms", "histogram")


class LocalSampler:
    def __init__(self, root: str | os.PathLike | None = None, interval: float = 1.0):
        if root is None:
            from app.store import paths

            root = paths.local_root()
        self.root = Root(str(root))
        self.interval = interval
        self._cpu_prev = None  # [(busy, total)] all cores first
        self._last = None  # monotonic time of the previous take
        self._runners: dict[str, _Runner] = {}

    def sample(self) -> dict:
        """One sample; the first one is measured over FIRST_INTERVAL (a baseline is taken first)."""
        if self._last is None:
            self._take()
            time.sleep(min(FIRST_INTERVAL, self.interval))
            s = self._take()
            s["interval_s"] = float(self.interval)
            return s
        return self._take()

    def close(self) -> None:
        self._runners.clear()

    def _take(self) -> dict:
        now = time.monotonic()
        elapsed = now - self._last if self._last is not None else 0.0
        self._last = now
        return {"ts": round(time.time(), 3), "interval_s": round(elapsed, 3), "host": self._host(),
                "models": self._models(now)}

    # -- the host ---------------------------------------------------------------------------------
    def _host(self) -> dict:
        total, per_core = self._cpu()
        vm = psutil.virtual_memory()
        try:
            load = [round(x, 2) for x in os.getloadavg()]
        except OSError:
            load = [0.0, 0.0, 0.0]
        path = self.root.path
        while not os.path.isdir(path) and os.path.dirname(path) != path:
            path = os.path.dirname(path)
        du = psutil.disk_usage(path)
        rx = tx = 0
        # nowrap=False: /proc/net/dev as it is, as the agent's sampler reads it (psutil's default adds a
        # removed-then-recreated interface's old count, so the two disagreed after a veth came back)
        for nic, c in psutil.net_io_counters(pernic=True, nowrap=False).items():
            if nic != "lo":
                rx += c.bytes_recv
                tx += c.bytes_sent
        return {"cpu_percent": total, "cpu_per_core": per_core,
                "memory": {"total": vm.total, "used": vm.total - vm.available, "available": vm.available},
                "load": load, "disk": {"path": self.root.path, "total": du.total, "used": du.used, "free": du.free},
                "net": {"rx_bytes": rx, "tx_bytes": tx}}

    def _cpu(self):
        """Busy share of all cores and of each, from cpu_times deltas (idle and iowait are idle), as
        the agent computes it from /proc/stat; psutil.cpu_percent keeps global state, this does not."""
        now = [_busy_total(t) for t in [psutil.cpu_times(), *psutil.cpu_times(percpu=True)]]
        prev, self._cpu_prev = self._cpu_prev, now
        if prev is None or len(prev) != len(now):
            return 0.0, [0.0] * (len(now) - 1)
        out = []
        for (b, t), (pb, pt) in zip(now, prev):
            out.append(round(min(100.0, max(0.0, 100.0 * (b - pb) / (t - pt))), 1) if t > pt else 0.0)
        return out[0], out[1:]

    # -- the models -------------------------------------------------------------------------------
    def _models(self, now: float) -> dict:
        out = {}
        for name in self.root.model_names():
            model = self.root.model(name)
            version = model.current_version()
            rec = supervise.record(model, version) if version else None
            runner = self._runners.get(name)
            if rec is None or not supervise.alive(rec):
                self._runners.pop(name, None)
                continue
            if runner is None or runner.pid != int(rec["pid"]) or runner.version != version:
                runner = _Runner.open(model, version, rec)
                if runner is None:
                    self._runners.pop(name, None)
                    continue
                self._runners[name] = runner
            figures = runner.measure(now)
            if figures is None:
                self._runners.pop(name, None)
                continue
            out[name] = figures
        for name in [n for n in self._runners if n not in out]:
            del self._runners[name]
        return out


def _busy_total(t) -> tuple[float, float]:
    idle = t.idle + getattr(t, "iowait", 0.0)
    total = sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"))
    return total - idle, total


class _Runner:
    @classmethod
    def open(cls, model, version, rec):
        try:
            proc = psutil.Process(int(rec["pid"]))
            proc.cpu_percent(None)  # starts its interval
            created = proc.create_time()
        except (psutil.Error, KeyError, TypeError, ValueError):
            return None
        return cls(model, version, rec, proc, created)

    def __init__(self, model, version, rec, proc, created):
        self.model, self.version, self.proc, self.created = model, version, proc, created
        self.children: dict[int, psutil.Process] = {}  # `[serve] workers`: the parent's forked workers
        self.pid = proc.pid
        self.port = rec.get("port")
        self.meter = RunnerMeter()

    def measure(self, now: float) -> dict | None:
        p = self.proc
        try:
            with p.oneshot():
                if p.create_time() != self.created or p.status() == psutil.STATUS_ZOMBIE:
                    return None
                cpu = round(p.cpu_percent(None), 1)
                rss = p.memory_info().rss
                threads = p.num_threads()
                try:
                    open_files = p.num_fds() if hasattr(p, "num_fds") else len(p.open_files())
                except psutil.AccessDenied:
                    open_files = None
        except psutil.Error:
            return None
        rss, cpu, workers = self._workers(rss, cpu)
        out = {"version": self.version, "pid": self.pid, "cpu_percent": cpu, "rss_bytes": rss, "threads": threads,
               "open_files": open_files, "uptime_s": round(max(0.0, time.time() - self.created), 1),
               "workers": workers}
        if not self.port:
            self.port = supervise.read_port(self.model, self.version)
        text = _get_metrics(self.port) if self.port else None
        if text is None:
            out.update(dict.fromkeys(TRAFFIC_KEYS))
        else:
            out.update(self.meter.read(text, now))
        return out


    def _workers(self, rss: int, cpu: float):
        """(rss sum, cpu sum, per worker) over the runner's process tree, as workerfigures.py does."""
        workers, kept = [], {}
        try:
            found = self.proc.children()
        except psutil.Error:
            found = []
        for child in found:
            c = kept[child.pid] = self.children.get(child.pid, child)
            try:
                workers.append({"pid": c.pid, "rss_bytes": c.memory_info().rss, "cpu_percent": round(c.cpu_percent(None), 1)})
            except psutil.Error:
                kept.pop(child.pid)
        self.children = kept
        if not workers:
            return rss, cpu, [{"pid": self.pid, "rss_bytes": rss, "cpu_percent": cpu}]
        return rss + sum(w["rss_bytes"] for w in workers), round(cpu + sum(w["cpu_percent"] for w in workers), 1), workers


def _get_metrics(port) -> str | None:
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=METRICS_TIMEOUT)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        body = resp.read()
        return body.decode("utf-8", "replace") if resp.status == 200 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()
