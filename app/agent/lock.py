"""One change at a time per server: an flock on <root>/.berth/lock that names its holder."""
import fcntl
import json
import os
import signal
import threading
import time

from .layout import AgentError
from .runnerproc import pid_alive


_holders = set()  # idents of this process's threads holding the lock (a session runs several requests)


def holding_threads():
    return set(_holders)


class ServerLock:
    """An flock taken on a descriptor of its own: it excludes other threads of the same process as
    well as other processes (flock locks belong to the open file, not to the process as fcntl's do)."""

    def __init__(self, path, holder):
        self.path = path
        self.holder = holder
        self.fd = None

    def __enter__(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            held = _read_holder(fd)
            os.close(fd)
            raise AgentError(
                "the server is busy: %s is running '%s' since %s; wait for it to finish and try again"
                % (held.get("who", "someone"), held.get("what", "a change"), held.get("since", "?")),
                "locked",
                holder=held,
            )
        self.fd = fd
        _holders.add(threading.get_ident())
        info = dict(self.holder, since=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), pid=os.getpid())
        try:  # who holds it is for people; the flock is the lock, and must hold on a full disk too
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError:
            pass
        return self

    def __exit__(self, *exc):
        _holders.discard(threading.get_ident())
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def _read_holder(fd):
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except ValueError:
        return {}


def inspect(path):
    """Who holds the lock, without waiting: {"held", "holder", "holder_alive"}. A holder written in
    the file while nobody holds the flock is what a killed agent left: the system released it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            return {"held": True, "holder": holder, "holder_alive": pid_alive(holder.get("pid"))}
        holder = _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return {"held": False, "holder": holder, "holder_alive": False}
    finally:
        os.close(fd)


def break_lock(path, expected_pid, wait_s=10.0):
    """End the agent that holds the lock (SIGTERM: it journals its failure and cleans up; SIGKILL
    after `wait_s`), but only if it is still the one the operator confirmed (`expected_pid`) and
    really a Berth agent. Returns the holder it ended."""
    state = inspect(path)
    holder = state["holder"]
    if not state["held"]:
        return None
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid != expected_pid:
        raise AgentError("the lock is now held by another process (pid %s, not %s); look again before breaking it"
                         % (pid, expected_pid), "lock_changed", holder=holder)
    if not _is_agent(pid):
        raise AgentError("pid %d holds the lock but is not a Berth agent; not touching it" % pid, "not_agent",
                         holder=holder)
    # the holder may be a request of this very session: SIGTERM cancels it (app/agent/session.py);
    # SIGKILL would end the session and this unlock with it
    steps = ((signal.SIGTERM, wait_s),) if pid == os.getpid() else ((signal.SIGTERM, wait_s), (signal.SIGKILL, 5.0))
    for sig, wait in steps:
        try:
            os.kill(pid, sig)
            os.kill(pid, signal.SIGCONT)  # a stopped process handles nothing until it runs again
        except OSError:
            pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not inspect(path)["held"]:
                return holder
            time.sleep(0.1)
    raise AgentError("pid %d did not let go of the lock" % pid, "lock_stuck", holder=holder)


def _is_agent(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return pid_alive(pid)  # no /proc (not Linux): the pid file is all there is
    return any(a.endswith(b"agent.py") or b"berth_agent" in a for a in argv)
