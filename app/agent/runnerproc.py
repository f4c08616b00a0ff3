"""Telling a runner from its files and /proc, with nothing heavier than `os`: used by supervise.py
and by the sampler, which must stay small (it re-execs importing only what it needs)."""
import os


def read_port(model, version):
    """The runner's port once it is ready (its port file is written after the socket is bound)."""
    try:
        with open(model.port_file(version)) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def is_runner_process(pid, release):
    """Is `pid` running (not a zombie or dead) with `release` in its command line, i.e. still our
    runner and not an unrelated process that reused the pid? Needs /proc."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X", b"x"):
                return False
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return bool(release) and release.encode() in f.read()
    except (OSError, IndexError):
        return False


def pid_alive(pid):
    """A process with this pid exists (it may belong to someone else: PermissionError still says yes)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def has_proc():
    return os.path.isdir("/proc/self")
