"""Waiting for processes to end without polling: a pidfd (Linux 5.3+, Python 3.9+) becomes readable
when its process exits, whoever its parent is. An idle watchdog then wakes once a second instead of
ten times (at a hundred servers, ~0.4 % of a core each), and still sees a killed runner at once.
Where pidfds are missing, `usable` is False and the caller polls as before."""
import os
import select
import time


class ExitWaiter:
    def __init__(self):
        self.fds = {}  # pid -> its pidfd
        self.poller = select.poll() if hasattr(select, "poll") else None
        self.usable = hasattr(os, "pidfd_open") and self.poller is not None
        self._wake_r = self._wake_w = None
        if self.usable:
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
            self.poller.register(self._wake_r, select.POLLIN)

    def wake(self):
        """End the current (or next) wait now: a change started a runner the watchdog should watch."""
        if self._wake_w is not None:
            try:
                os.write(self._wake_w, b"x")
            except OSError:  # the pipe is full: a wake is pending anyway
                pass

    def watch(self, pids):
        """Watch exactly `pids`. False when one ended already (look again at once) or pidfds fail here."""
        for pid in set(self.fds) - set(pids):
            self._forget(pid)
        gone = False
        for pid in pids:
            if pid in self.fds or not self.usable:
                continue
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                gone = True
                continue
            except OSError:  # ENOSYS (a kernel before 5.3), a seccomp filter: poll as before
                self.close()
                self.usable = False
                return False
            self.fds[pid] = fd
            self.poller.register(fd, select.POLLIN)
        return self.usable and not gone

    def wait(self, timeout):
        """Until a watched process ends, wake() is called or `timeout` seconds pass; the pids that ended."""
        if self.poller is None or not self.usable:
            time.sleep(timeout)
            return []
        ready = {fd for fd, _ in self.poller.poll(int(timeout * 1000))}
        if self._wake_r in ready:
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except OSError:  # drained (EAGAIN)
                pass
        return [pid for pid, fd in self.fds.items() if fd in ready]

    def close(self):
        for pid in list(self.fds):
            self._forget(pid)
        for fd in (self._wake_r, self._wake_w):
            if fd is not None:
                os.close(fd)
        if self._wake_r is not None:
            self.poller.unregister(self._wake_r)
        self._wake_r = self._wake_w = None

    def _forget(self, pid):
        fd = self.fds.pop(pid)
        self.poller.unregister(fd)
        os.close(fd)
