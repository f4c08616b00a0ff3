"""A TCP proxy on 127.0.0.1 that delays every byte by a fixed time in each direction: latency
without netem (this kernel has none). Bandwidth is not limited; order is kept.

    with DelayProxy(target_port, delay_s=0.05) as proxy:   # +100 ms round trip
        connect to 127.0.0.1:proxy.port
"""
from __future__ import annotations

import collections
import socket
import threading
import time


class DelayProxy:
    def __init__(self, target_port: int, delay_s: float, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.delay = delay_s
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = False
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True, name="delay-proxy").start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.sockets.append(s)
            _Pipe(client, server, self.delay)
            _Pipe(server, client, self.delay)

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass

    def __enter__(self) -> "DelayProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Pipe:
    """src → dst, each chunk released `delay` after it was read."""

    def __init__(self, src: socket.socket, dst: socket.socket, delay: float):
        self.src, self.dst, self.delay = src, dst, delay
        self.queue: collections.deque = collections.deque()
        self.ready = threading.Condition()
        self.eof = False
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self) -> None:
        try:
            while data := self.src.recv(1 << 18):
                with self.ready:
                    self.queue.append((time.monotonic() + self.delay, data))
                    self.ready.notify()
        except OSError:
            pass
        with self.ready:
            self.eof = True
            self.ready.notify()

    def _write(self) -> None:
        try:
            while True:
                with self.ready:
                    while not self.queue and not self.eof:
                        self.ready.wait()
                    if not self.queue:
                        break
                    due, data = self.queue.popleft()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                self.dst.sendall(data)
            self.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
