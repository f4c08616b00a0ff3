"""A runner's worker processes for the sampler (`[serve] workers = N`, runnerworkers.py): the parent
the runner record names forks the workers, so a model's memory and CPU are its process tree's. Read
from /proc/<pid>/task/<pid>/children (one file), else by scanning /proc for the parent pid. Stdlib only."""
import os

from .procfile import CLK_TCK, PAGE


class WorkerFigures:
    """Each sample: (rss sum, cpu % sum, [{pid, rss_bytes, cpu_percent}] per worker) of one runner.
    A runner without workers is its own one worker."""

    def __init__(self, pid):
        self.pid = pid
        self.prev = {}  # worker pid -> (monotonic, cpu ticks)

    def measure(self, now, rss, cpu):
        seen, workers = {}, []
        for child in children(self.pid):
            st = _stat(child)
            if st is None:
                continue
            ticks, child_rss = st
            before = self.prev.get(child)
            seen[child] = (now, ticks)
            child_cpu = 0.0
            if before is not None and now > before[0]:
                child_cpu = round(100.0 * (ticks - before[1]) / CLK_TCK / (now - before[0]), 1)
            workers.append({"pid": child, "rss_bytes": child_rss, "cpu_percent": child_cpu})
        self.prev = seen
        if not workers:
            return rss, cpu, [{"pid": self.pid, "rss_bytes": rss, "cpu_percent": cpu}]
        return (rss + sum(w["rss_bytes"] for w in workers), round(cpu + sum(w["cpu_percent"] for w in workers), 1),
                workers)


def children(pid):
    """The pids of `pid`'s children, oldest first as the kernel lists them."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid), "rb") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN
        pass
    except (OSError, ValueError):
        return []
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name, "rb") as f:
                    if int(f.read().rsplit(b")", 1)[1].split()[1]) == pid:
                        out.append(int(name))
            except (OSError, ValueError, IndexError):
                continue
    return sorted(out)


def _stat(pid):
    """(cpu ticks, rss bytes) of a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in (b"Z", b"X", b"x"):
        return None
    return int(fields[11]) + int(fields[12]), int(fields[21]) * PAGE
