"""How a connection to a server that stopped answering ends, instead of waiting for ever.

paramiko's own keepalive only sends (want_reply false) and never notices that no answer comes; the
kernel's TCP keepalive and TCP_USER_TIMEOUT notice a dead link, not a live one whose sshd hangs
(stopped, swapping, wedged): the peer's kernel still acknowledges every packet. OpenSSH's
ServerAliveInterval / ServerAliveCountMax ask for an answer; so does this. A held connection
(the keeper) waits on such a server with beats going to the CLI: without it, a group deploy
waited for the command timeout (15 minutes)."""
from __future__ import annotations

import socket
import weakref

import paramiko
from paramiko.common import cMSG_GLOBAL_REQUEST
from paramiko.message import Message

COUNT = 3  # OpenSSH's ServerAliveCountMax: keepalives unanswered in a row before the link is ended
# how often the transport's thread wakes to look at the keepalive (its socket's read timeout; paramiko's
# own 0.1 s wakes 100 idle connections 1000 times a second; a blocking socket never, keepalive or not)
WAKE = 1.0


class CheckedTransport(paramiko.Transport):
    """A paramiko Transport whose keepalive asks the server for an answer; COUNT intervals in a row
    without one (and nothing else sent meanwhile) close it, so every channel on it fails (EOF)."""

    unanswered = 0
    hung_for = 0.0  # seconds without an answer when it was closed for that (0: it was not)

    def check_alive(self, interval: float) -> None:
        """After the handshake: a keepalive every `interval` s with nothing sent (0: none, and a
        socket that blocks, as Berth's always did)."""
        if isinstance(self.sock, socket.socket):
            self.sock.settimeout(WAKE if interval > 0 else None)
        if interval <= 0:
            return
        self.unanswered = 0
        me = weakref.proxy(self)  # the packetizer keeps the callback: no cycle back to the transport
        self.packetizer.set_keepalive(int(max(1, interval)), lambda: me._probe(interval))

    def _probe(self, interval: float) -> None:
        """Runs in the transport's own thread, after `interval` s with nothing sent."""
        if self.unanswered >= COUNT:
            self.hung_for = interval * COUNT
            self.close()
            return
        self.unanswered += 1
        m = Message()
        m.add_byte(cMSG_GLOBAL_REQUEST)
        m.add_string("keepalive@openssh.com")
        m.add_boolean(True)  # sshd answers an unknown request with a failure: that is an answer
        self._send_user_message(m)

    def _parse_request_success(self, m):
        self.unanswered = 0
        super()._parse_request_success(m)

    def _parse_request_failure(self, m):
        self.unanswered = 0
        super()._parse_request_failure(m)


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
