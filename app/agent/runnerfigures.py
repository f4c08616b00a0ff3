"""The figures of one runner process for the sampler: its /proc/<pid>/stat kept open from its first
sight to its end, its open files, and its traffic from /metrics (one HTTP/1.0 GET on a raw socket:
http.client costs ~50 ms and a few MB to import in the lean sampler). Like the sampler, it reads the
runner record itself instead of importing supervise.py (subprocess, tempfile...). Stdlib only."""
import json
import os
import socket
import time

from .containerfigures import ContainerFigures
from .histogram import BUCKETS
from .procfile import CLK_TCK, PAGE, ProcFile, uptime
from .runnermeter import RunnerMeter
from .runnerproc import is_runner_process, read_port
from .workerfigures import WorkerFigures

METRICS_TIMEOUT = 0.5
METRICS_MAX_BYTES = 1 << 20
TRAFFIC_KEYS = ("requests_total", "errors_total", "requests_per_s", "errors_per_s", "latency_ms", "histogram")


def read_record(model, version, runner):
    """The runner record of the current release (supervise.py writes it), re-read only when its
    file changed."""
    path = model.runner_file(version)
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (path, st.st_mtime_ns, st.st_ino, st.st_size)
    if runner is not None and runner.rec_key == key:
        return runner.rec
    try:
        with open(path) as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict):
        return None
    rec["_key"] = key
    return rec


class Runner:
    """One runner process, from its first sight to its end: its /proc/<pid>/stat kept open (reads
    fail once the process is gone, even if its pid is reused) and its RunnerMeter."""

    @classmethod
    def open(cls, model, version, rec):
        try:
            pid = int(rec["pid"])
        except (KeyError, TypeError, ValueError):
            return None
        if not is_runner_process(pid, rec.get("release")):  # the pid is still our runner, not a reused one
            return None
        r = cls(model, version, rec, pid)
        if r.read_stat() is None:
            r.close()
            return None
        return r

    def __init__(self, model, version, rec, pid):
        self.model, self.version, self.rec, self.pid = model, version, rec, pid
        self.rec_key = rec.get("_key")
        self.stat = ProcFile("/proc/%d/stat" % pid, 4096)
        self.fd_dir = "/proc/%d/fd" % pid
        self.meter = RunnerMeter()
        self.workers = WorkerFigures(pid)
        self.container = ContainerFigures(model, version)
        self.port = rec.get("port")
        self.prev_cpu = None  # (monotonic, ticks)
        self.started_ticks = None

    def same(self, rec):
        if rec.get("_key") == self.rec_key:
            return True
        if rec.get("pid") == self.pid and rec.get("release") == self.rec.get("release"):
            self.rec, self.rec_key = rec, rec.get("_key")  # rewritten (e.g. its port saved): same process
            self.port = rec.get("port") or self.port
            return True
        return False

    def close(self):
        self.stat.close()

    def read_stat(self):
        """(state, cpu ticks, threads, start ticks, rss bytes), or None when the process is gone."""
        try:
            fields = self.stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            return None
        state = fields[0]
        if state in (b"Z", b"X", b"x"):
            return None
        start = int(fields[19])
        if self.started_ticks is None:
            self.started_ticks = start
        elif start != self.started_ticks:
            return None
        return state, int(fields[11]) + int(fields[12]), int(fields[17]), start, int(fields[21]) * PAGE

    def measure(self, now):
        st = self.read_stat()
        if st is None:
            return None
        _state, ticks, threads, start, rss = st
        prev, self.prev_cpu = self.prev_cpu, (now, ticks)
        cpu = 0.0
        if prev is not None and now > prev[0]:
            cpu = round(100.0 * (ticks - prev[1]) / CLK_TCK / (now - prev[0]), 1)
        try:
            open_files = len(os.listdir(self.fd_dir))
        except OSError:
            open_files = None
        rss, cpu, workers = self.workers.measure(now, rss, cpu)  # the process tree's sums
        container = self.container.measure(now)
        if container and container["running"]:  # a container release: the model's own figures are there
            rss, cpu = rss + container["rss_bytes"], round(cpu + container["cpu_percent"], 1)
        out = {"version": self.version, "pid": self.pid, "cpu_percent": cpu, "rss_bytes": rss,
               "threads": threads, "open_files": open_files, "uptime_s": uptime(start), "workers": workers}
        if container:
            out["container"] = container
        if not self.port:
            self.port = read_port(self.model, self.version)
        text = get_metrics(self.port) if self.port else None
        if text is None:
            out.update(dict.fromkeys(TRAFFIC_KEYS))
        else:
            out.update(self.meter.read(text, now))
            if not out["histogram"]:  # no /predict served yet: RunnerMeter gives [], the contract all buckets
                out["histogram"] = [0] * (len(BUCKETS) + 1)
        return out


def get_metrics(port):
    """GET /metrics from a runner on 127.0.0.1 (HTTP/1.0, so it closes after the answer); the body,
    or None on any failure or when it takes over METRICS_TIMEOUT in all."""
    deadline = time.monotonic() + METRICS_TIMEOUT
    try:
        sock = socket.create_connection(("127.0.0.1", int(port)), timeout=METRICS_TIMEOUT)
    except (OSError, ValueError):
        return None
    try:
        sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        chunks, size = [], 0
        while size <= METRICS_MAX_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if _complete(chunks):
                break
        data = b"".join(chunks)
    except OSError:
        return None
    finally:
        sock.close()
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/") or head.split(None, 2)[1:2] != [b"200"]:
        return None
    return body.decode("utf-8", "replace")


def _complete(chunks):
    """Has the whole answer arrived (headers and Content-Length bytes of body)?"""
    data = b"".join(chunks) if len(chunks) > 1 else chunks[0]
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return len(body) >= int(value.strip())
            except ValueError:
                return False
    return False
