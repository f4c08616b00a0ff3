"""How a connection to a server that stopped answering ends, instead of waiting for ever.

paramiko's own keepalive only sends (want_reply false) and never notices that no answer comes (and
it never fired here: it is checked on a read timeout, and Berth's sockets block); the kernel's TCP
keepalive and TCP_USER_TIMEOUT notice a dead link, not a live one whose sshd hangs (stopped,
swapping, wedged): the peer's kernel still acknowledges every packet. OpenSSH's
ServerAliveInterval / ServerAliveCountMax ask for an answer; so does this. A held connection
(the keeper) waits on such a server with beats going to the CLI: without it, a group deploy
waited for the command timeout (15 minutes)."""
from __future__ import annotations

import socket
import threading
import time
import weakref

import paramiko
from paramiko.common import cMSG_GLOBAL_REQUEST
from paramiko.message import Message

COUNT = 3  # OpenSSH's ServerAliveCountMax: keepalives unanswered in a row before the link is ended
TICK = 1.0  # how often the one watcher thread (for every connection of the process) looks
_watched: "weakref.WeakSet[CheckedTransport]" = weakref.WeakSet()
_lock = threading.Lock()
_watcher: list[threading.Thread] = []


class CheckedTransport(paramiko.Transport):
    """A paramiko Transport whose keepalive asks the server for an answer: after `interval` s with
    nothing sent, a request wanting a reply; COUNT of them unanswered in a row close the transport,
    so every channel on it fails (EOF). Its socket stays as it was (blocking): no cost per packet."""

    interval = 0.0
    unanswered = 0
    hung_for = 0.0  # seconds without an answer when it was closed for that (0: it was not)

    def check_alive(self, interval: float) -> None:
        """After the handshake (0: no keepalive, as before)."""
        if interval <= 0:
            return
        self.interval, self.unanswered, self._probed = float(max(1, int(interval))), 0, 0.0
        self._sending = threading.Event()
        with _lock:
            _watched.add(self)
            if not _watcher or not _watcher[0].is_alive():
                _watcher[:] = [threading.Thread(target=_watch, name="berth-ssh-alive", daemon=True)]
                _watcher[0].start()

    def _tick(self) -> None:
        now = time.time()
        last_sent = getattr(self.packetizer, "_Packetizer__keepalive_last", 0.0)  # time.time() of its last write
        if not self.is_active() or now - max(last_sent, self._probed) < self.interval:
            return
        if self.unanswered >= COUNT:
            self.hung_for = self.interval * COUNT
            try:
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes the transport's thread, blocked in its read
            except (OSError, AttributeError):
                pass
            self.close()
            return
        self.unanswered += 1
        self._probed = now
        if not self._sending.is_set():  # one probe on its way at a time; a write may block on a full link
            self._sending.set()
            threading.Thread(target=self._probe, name="berth-ssh-probe", daemon=True).start()

    def _probe(self) -> None:
        m = Message()
        m.add_byte(cMSG_GLOBAL_REQUEST)
        m.add_string("keepalive@openssh.com")
        m.add_boolean(True)  # sshd answers an unknown request with a failure: that is an answer
        try:
            self._send_user_message(m)
        except Exception:  # noqa: BLE001 - closed meanwhile: nothing to ask
            pass
        finally:
            self._sending.clear()

    def _parse_request_success(self, m):
        self.unanswered = 0
        super()._parse_request_success(m)

    def _parse_request_failure(self, m):
        self.unanswered = 0
        super()._parse_request_failure(m)


def _watch() -> None:
    while True:
        time.sleep(TICK)
        with _lock:
            transports = list(_watched)
        for t in transports:
            try:
                t._tick()
            except Exception:  # noqa: BLE001 - a transport closing under us: the next tick skips it
                pass


def hung_why(transport) -> str:
    """Why `transport` (a CheckedTransport, or anything) was closed, when it was for a hang; else ""."""
    hung = getattr(transport, "hung_for", 0)
    return f"no answer to {COUNT} keepalives in {hung:g} s: the server or its sshd hangs" if hung else ""


def tcp_liveness(sock: socket.socket, keepalive: float) -> None:
    """With the kernel's TCP_USER_TIMEOUT a link whose packets go unacknowledged for 3 intervals is
    closed, so channels in use fail (EOF) instead of waiting for ever on a dead peer."""
    if keepalive <= 0:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(keepalive * COUNT * 1000))
    for opt, value in (("TCP_KEEPIDLE", keepalive), ("TCP_KEEPINTVL", keepalive), ("TCP_KEEPCNT", COUNT)):
        if hasattr(socket, opt):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), int(max(1, value)))
