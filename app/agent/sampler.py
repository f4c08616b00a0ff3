"""The `sample` command: one measurement of the server and of each running model per interval, as
JSON lines (the schema is docs/monitoring.md). Linux only for the figures that come from /proc.

Kept cheap on purpose, since it runs for as long as a console watches the server:

- Memory: the agent process has imported everything the other commands need (~19 MB RSS on
  CPython 3.11). So once the request is checked, the agent replaces itself (exec, same pid, same
  pipes) with a fresh `python3 -S` that imports only this module and its few stdlib needs (~12 MB).
  For the same reason this module does not import supervise.py (subprocess, tempfile...): it reads
  the runner record itself and checks the process with runnerproc.py, as supervise.py does.
- CPU: no subprocess; /proc files kept open and re-read with pread; one short HTTP/1.0 GET of each
  runner's /metrics on a raw socket (http.client costs ~50 ms and a few MB to import); objects
  reused between samples.
- Time: a monotonic schedule (sample k is due at start + k * interval, whatever a sample cost).
  While it waits, the sampler watches its stdout: when Berth closes the stream the pipe breaks and
  the sampler leaves at once and quietly, not at its next write up to a minute later.

A model is in `models` only while its current release's runner is alive. When its /metrics does
not answer within 0.5 s, the process figures are still there and the traffic figures are null.
"""
import json
import os
import select
import socket
import sys
import time

from .layout import AgentError, Root
from .histogram import BUCKETS
from .runnermeter import RunnerMeter
from .protocol import emit_to, fail
from .runnerproc import is_runner_process, read_port
from .intervals import MAX_INTERVAL, MIN_INTERVAL

PACKAGE = __name__.rpartition(".")[0]  # "berth_agent" on a server, "app.agent" in the source tree
PACKAGE_PARENT = os.path.dirname(os.path.abspath(__file__))
for _ in range(PACKAGE.count(".") + 1):
    PACKAGE_PARENT = os.path.dirname(PACKAGE_PARENT)

FIRST_INTERVAL = 0.25  # the first sample's figures are computed over this much (see the docs)
METRICS_TIMEOUT = 0.5
METRICS_MAX_BYTES = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
TRAFFIC_KEYS = ("requests_total", "errors_total", "requests_per_s", "errors_per_s", "latency_ms", "histogram")
LEAN = ("import sys; sys.path.insert(0, sys.argv[1]); "
        "sys.exit(__import__(sys.argv[2] + '.sampler', fromlist=['lean_main']).lean_main(sys.argv[3]))")


def sample(ctx, req):
    """Agent command: {"interval": s, "count": n (0 = until Berth closes the stream)}."""
    interval = req.get("interval", 1.0)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) \
            or not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        raise AgentError("interval must be a number of seconds from %g to %g, not %r"
                         % (MIN_INTERVAL, MAX_INTERVAL, interval), "usage")
    count = req.get("count", 0)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise AgentError("count must be a whole number >= 0 (0: until the stream is closed), not %r" % (count,),
                         "usage")
    if _in_agent_process():
        _become_lean({"root": ctx.root.path, "interval": interval, "count": count})
    return run(ctx.root, interval, count, ctx.emit)


def _in_agent_process():
    """Started as `python3 agent.py sample` (not called in-process, as tests and tools do)?"""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None) == PACKAGE + ".__main__" and sys.stdout is sys.__stdout__ \
        and bool(sys.executable) and os.path.exists("/proc/self/stat")


def _become_lean(request):
    """exec a fresh interpreter that runs `lean_main` (same pid, same stdin/stdout/stderr)."""
    # the last two are for people (and tests) looking at `ps`: the launcher's path and the command
    argv = [sys.executable, "-I", "-S", "-c", LEAN, PACKAGE_PARENT, PACKAGE, json.dumps(request),
            os.path.join(PACKAGE_PARENT, "agent.py"), "sample"]
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, argv)
    except OSError:
        pass  # cannot exec (odd platform): sample in this process after all


class _Stop(Exception):
    pass


def _stop(signum, frame):
    raise _Stop("signal %d" % signum)


def lean_main(raw):
    """The sampler's own small main, after the exec: the agent's line protocol, nothing else."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    out = sys.stdout
    emit = emit_to(out)

    try:
        req = json.loads(raw)
        result = run(Root(req["root"]), req["interval"], req["count"], emit)
        emit("result", result=result)
        return 0
    except AgentError as e:
        return fail(out, str(e), e.code)
    except _Stop as e:
        return fail(out, "cancelled: %s" % e, "cancelled")
    except Exception as e:  # report, never die silently
        return fail(out, "agent error: %s: %s" % (type(e).__name__, e), "internal")


def run(root, interval, count, emit):
    """Sample every `interval` s until `count` samples were sent (0: until emit fails)."""
    sampler = Sampler(root)
    watch = _StdoutWatch()
    sent = 0
    try:
        start = time.monotonic()
        sampler.take(start)  # the baseline: the first sample compares with it
        due = start + min(FIRST_INTERVAL, interval)
        first = True
        while True:
            watch.sleep_until(due)
            now = time.monotonic()
            s = sampler.take(now)
            if first:
                s["interval_s"] = float(interval)
                first = False
            emit("sample", **s)
            sent += 1
            if count and sent >= count:
                return {"samples": sent}
            due += interval
            if due <= now:  # fell behind (suspended, starved): skip the missed slots, keep the phase
                due += interval * (int((now - due) / interval) + 1)
    except (AgentError, _Stop) as e:
        if isinstance(e, _Stop) or e.code == "cancelled":
            watch.quiet()
        raise
    finally:
        sampler.close()


class _StdoutWatch:
    """Sleeps, but wakes up and raises `cancelled` as soon as the reader of our stdout is gone."""

    def __init__(self):
        self.fd = None
        self.poller = None
        try:
            if sys.stdout is sys.__stdout__ and sys.stdout is not None:
                self.fd = sys.stdout.fileno()
                self.poller = select.poll()
                self.poller.register(self.fd, 0)  # POLLERR / POLLHUP are always reported
        except (AttributeError, ValueError, OSError):
            self.fd = self.poller = None

    def sleep_until(self, due):
        while True:
            left = due - time.monotonic()
            if left <= 0:
                return
            if self.poller is None:
                time.sleep(left)
                continue
            for _fd, flags in self.poller.poll(max(1, int(left * 1000 + 0.999))):
                if flags & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                    raise AgentError("cancelled: Berth closed the stream", "cancelled")

    def quiet(self):
        """The reader is gone: point stdout at /dev/null so the last error line and the exit-time
        flush go nowhere instead of printing a BrokenPipeError traceback."""
        if self.fd is None:
            return
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.fd)
            os.close(null)
        except OSError:
            pass


class _ProcFile:
    """A /proc file kept open and re-read from offset 0 (the kernel regenerates it each time)."""

    def __init__(self, path, size=65536):
        self.path, self.size, self.fd = path, size, None

    def read(self):
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDONLY)
        data = os.pread(self.fd, self.size, 0)
        while len(data) == self.size:  # did not fit: grow once and for all
            self.size *= 4
            data = os.pread(self.fd, self.size, 0)
        return data

    def close(self):
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


class Sampler:
    def __init__(self, root):
        self.root = root
        self.stat = _ProcFile("/proc/stat")
        self.meminfo = _ProcFile("/proc/meminfo", 8192)
        self.netdev = _ProcFile("/proc/net/dev")
        self.cpu_prev = None  # {"cpu": (busy, total), "cpu0": ...}
        self.runners = {}  # model name -> _Runner
        self.last = None  # monotonic time of the previous take

    def close(self):
        for f in (self.stat, self.meminfo, self.netdev):
            f.close()
        for r in self.runners.values():
            r.close()
        self.runners.clear()

    def take(self, now):
        elapsed = now - self.last if self.last is not None else 0.0
        self.last = now
        return {"ts": round(time.time(), 3), "interval_s": round(elapsed, 3),
                "host": self.host(), "models": self.models(now)}

    # -- the host ---------------------------------------------------------------------------
    def host(self):
        total, per_core = self.cpu()
        return {"cpu_percent": total, "cpu_per_core": per_core, "memory": self.memory(),
                "load": [round(x, 2) for x in _loadavg()], "disk": self.disk(), "net": self.net()}

    def cpu(self):
        now = {}
        for line in self.stat.read().split(b"\n"):
            if not line.startswith(b"cpu"):
                if now:
                    break  # the cpu lines come first
                continue
            parts = line.split()
            v = [int(x) for x in parts[1:9]]  # user nice system idle iowait irq softirq steal (guest is in user)
            idle = v[3] + (v[4] if len(v) > 4 else 0)
            now[parts[0]] = (sum(v) - idle, sum(v))
        prev, self.cpu_prev = self.cpu_prev, now

        def percent(name):
            b, t = now[name]
            pb, pt = prev[name] if prev and name in prev else (0, 0)
            if prev is None or name not in prev or t <= pt:
                return 0.0
            return round(min(100.0, max(0.0, 100.0 * (b - pb) / (t - pt))), 1)

        cores = sorted((n for n in now if n != b"cpu"), key=lambda n: int(n[3:]))
        return percent(b"cpu"), [percent(n) for n in cores]

    def memory(self):
        fields = {}
        for line in self.meminfo.read().split(b"\n"):
            key, _, rest = line.partition(b":")
            if key in (b"MemTotal", b"MemAvailable", b"MemFree", b"Buffers", b"Cached"):
                fields[key] = int(rest.split()[0]) * 1024
        total = fields.get(b"MemTotal", 0)
        available = fields.get(b"MemAvailable")
        if available is None:  # kernels before 3.14
            available = fields.get(b"MemFree", 0) + fields.get(b"Buffers", 0) + fields.get(b"Cached", 0)
        return {"total": total, "used": total - available, "available": available}

    def disk(self):
        path = self.root.path
        while not os.path.isdir(path) and os.path.dirname(path) != path:
            path = os.path.dirname(path)  # not created yet: the file system it will be on
        st = os.statvfs(path)
        return {"path": self.root.path, "total": st.f_blocks * st.f_frsize,
                "used": (st.f_blocks - st.f_bfree) * st.f_frsize, "free": st.f_bavail * st.f_frsize}

    def net(self):
        rx = tx = 0
        for line in self.netdev.read().split(b"\n")[2:]:
            name, sep, rest = line.partition(b":")
            if not sep or name.strip() == b"lo":
                continue
            cols = rest.split()
            rx += int(cols[0])
            tx += int(cols[8])
        return {"rx_bytes": rx, "tx_bytes": tx}

    # -- the models -------------------------------------------------------------------------
    def models(self, now):
        out = {}
        seen = set()
        for name in self.root.model_names():
            model = self.root.model(name)
            version = model.current_version()
            if version is None:
                continue
            runner = self.runners.get(name)
            rec = _record(model, version, runner)
            if rec is None:
                continue
            if runner is None or not runner.same(rec):
                if runner is not None:
                    runner.close()
                runner = _Runner.open(model, version, rec)
                if runner is None:
                    self.runners.pop(name, None)
                    continue
                self.runners[name] = runner
            figures = runner.measure(now)
            if figures is None:  # it died since the last sample
                runner.close()
                del self.runners[name]
                continue
            seen.add(name)
            out[name] = figures
        for name in [n for n in self.runners if n not in seen]:
            self.runners.pop(name).close()
        return out


def _record(model, version, runner):
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


class _Runner:
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
        self.stat = _ProcFile("/proc/%d/stat" % pid, 4096)
        self.fd_dir = "/proc/%d/fd" % pid
        self.meter = RunnerMeter()
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
        out = {"version": self.version, "pid": self.pid, "cpu_percent": cpu, "rss_bytes": rss,
               "threads": threads, "open_files": open_files, "uptime_s": _uptime(start)}
        if not self.port:
            self.port = read_port(self.model, self.version)
        text = _get_metrics(self.port) if self.port else None
        if text is None:
            out.update(dict.fromkeys(TRAFFIC_KEYS))
        else:
            out.update(self.meter.read(text, now))
            if not out["histogram"]:  # no /predict served yet: RunnerMeter gives [], the contract all buckets
                out["histogram"] = [0] * (len(BUCKETS) + 1)
        return out


def _uptime(start_ticks):
    try:
        since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):
        try:
            with open("/proc/uptime", "rb") as f:
                since_boot = float(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
    return round(max(0.0, since_boot - start_ticks / float(CLK_TCK)), 1)


def _loadavg():
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)


def _get_metrics(port):
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
