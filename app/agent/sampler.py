"""The `sample` command: one measurement of the server and of each running model per interval, as
JSON lines (the schema is docs/monitoring.md). Linux only for the figures that come from /proc.

Kept cheap on purpose, since it runs for as long as a console watches the server:

- Memory: the agent process has imported everything the other commands need (~19 MB RSS on
  CPython 3.11). So once the request is checked, the agent replaces itself (exec, same pid, same
  pipes) with a fresh `python3 -S` that imports only this module, the few agent modules it reads with
  and their stdlib needs (~12 MB). Not for a single sample (`berth monitor --once`): it ends within
  its window, and a fresh interpreter would cost it ~0.15 s more.
  For the same reason nothing here imports supervise.py (subprocess, tempfile...): runnerfigures.py
  reads the runner record itself and checks the process with runnerproc.py, as supervise.py does.
- CPU: no subprocess; /proc files kept open and re-read with pread (procfile.py); one short
  HTTP/1.0 GET of each runner's /metrics on a raw socket (runnerfigures.py); objects reused
  between samples.
- Time: a monotonic schedule (sample k is due at start + k * interval, whatever a sample cost).
  While it waits, the sampler watches its stdout: when Berth closes the stream the pipe breaks and
  the sampler leaves at once and quietly, not at its next write up to a minute later.

A model is in `models` only while its current release's runner is alive. When its /metrics does
not answer within 0.5 s, the process figures are still there and the traffic figures are null.
"""
import json
import os
import select
import sys
import time

from .intervals import MAX_INTERVAL, MIN_INTERVAL
from .layout import AgentError, Root
from .procfile import ProcFile
from .protocol import emit_to, fail
from .runnerfigures import Runner, read_record

PACKAGE = __name__.rpartition(".")[0]  # "berth_agent" on a server, "app.agent" in the source tree
PACKAGE_PARENT = os.path.dirname(os.path.abspath(__file__))
for _ in range(PACKAGE.count(".") + 1):
    PACKAGE_PARENT = os.path.dirname(PACKAGE_PARENT)

FIRST_INTERVAL = 0.25  # the first sample's figures are computed over this much (see the docs)
LEAN = ("import sys; sys.path.insert(0, sys.argv[1]); "
        "sys.exit(__import__(sys.argv[2] + '.sampler', fromlist=['lean_main']).lean_main(sys.argv[3]))")


def sample(ctx, req):
    """Agent command: {"interval": s, "count": n (0 = until Berth closes the stream), "window": s
    (optional: what the first sample is measured over, instead of a short FIRST_INTERVAL; one
    sample of a whole window in one call is `berth monitor --once`)}."""
    interval = seconds_field(req, "interval", 1.0)
    window = seconds_field(req, "window", None)
    count = count_field(req)
    if _in_agent_process() and count != 1:  # one sample (`monitor --once`) ends at once: a fresh start costs more
        _become_lean({"root": ctx.root.path, "interval": interval, "count": count, "window": window})
    return run(ctx.root, interval, count, ctx.emit, window)


def count_field(req):
    count = req.get("count", 0)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise AgentError("count must be a whole number >= 0 (0: until the stream is closed), not %r" % (count,),
                         "usage")
    return count


def seconds_field(req, key, default):
    value = req.get(key, default)
    if value is default:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise AgentError("%s must be a number of seconds from %g to %g, not %r"
                         % (key, MIN_INTERVAL, MAX_INTERVAL, value), "usage")
    return value


def _in_agent_process():
    """Started as `python3 agent.py sample` (not called in-process, as tests and tools do)?"""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None) == PACKAGE + ".__main__" and sys.stdout is sys.__stdout__ \
        and bool(sys.executable) and os.path.exists("/proc/self/stat")


def _become_lean(request):
    """exec a fresh interpreter that runs `lean_main` (same pid, same stdin/stdout/stderr)."""
    # the last two are for people (and tests) looking at `ps`: the launcher's path and the command
    argv = [sys.executable, "-I", "-S", "-B", "-c", LEAN, PACKAGE_PARENT, PACKAGE, json.dumps(request),
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
        result = run(Root(req["root"]), req["interval"], req["count"], emit, req.get("window"))
        emit("result", result=result)
        return 0
    except AgentError as e:
        return fail(out, str(e), e.code)
    except _Stop as e:
        return fail(out, "cancelled: %s" % e, "cancelled")
    except Exception as e:  # report, never die silently
        return fail(out, "agent error: %s: %s" % (type(e).__name__, e), "internal")


def run(root, interval, count, emit, window=None, watch=None):
    """Sample every `interval` s until `count` samples were sent (0: until emit fails); the first
    one after `window` s (default: a short FIRST_INTERVAL, so a console's graph starts at once).
    `watch` waits between samples (default: a sleep that ends when our stdout's reader is gone)."""
    sampler = Sampler(root)
    watch = watch or _StdoutWatch()
    sent = 0
    try:
        start = time.monotonic()
        sampler.take(start)  # the baseline: the first sample compares with it
        due = start + (window if window is not None else min(FIRST_INTERVAL, interval))
        first = True
        while True:
            watch.sleep_until(due)
            now = time.monotonic()
            s = sampler.take(now)
            if first:
                s["interval_s"] = float(window if window is not None else interval)
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




class Sampler:
    def __init__(self, root):
        self.root = root
        self.stat = ProcFile("/proc/stat")
        self.meminfo = ProcFile("/proc/meminfo", 8192)
        self.netdev = ProcFile("/proc/net/dev")
        self.cpu_prev = None  # {"cpu": (busy, total), "cpu0": ...}
        self.runners = {}  # model name -> Runner
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
            rec = read_record(model, version, runner)
            if rec is None:
                continue
            if runner is None or not runner.same(rec):
                if runner is not None:
                    runner.close()
                runner = Runner.open(model, version, rec)
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


def _loadavg():
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)
