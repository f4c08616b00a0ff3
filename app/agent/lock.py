"""One change at a time per server: an flock on <root>/.berth/lock that names its holder."""
import fcntl
import json
import os
import time

from .layout import AgentError


class ServerLock:
    def __init__(self, path, holder):
        self.path = path
        self.holder = holder
        self.fd = None

    def __enter__(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
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
        info = dict(self.holder, since=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), pid=os.getpid())
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        return self

    def __exit__(self, *exc):
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def _read_holder(fd):
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except ValueError:
        return {}
