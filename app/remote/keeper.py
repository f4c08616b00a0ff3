"""The keeper: one small background process of ours per Berth home that holds the CLI's
authenticated SSH connections and their agent sessions, so later CLI calls skip the handshake, the
login and the session start (what OpenSSH's ControlMaster/ControlPersist gives ssh). One process for
all servers: a Python with paramiko is ~45 MB, a connection in it a few.

Started by held.py; its control socket takes {"op": "open", "server": ENTRY, ...}: no secret in it
(a password or passphrase is read from the keyring here, as every connection reads it). It connects
exactly as a direct call does (host keys checked, never accepted) and puts the connection on a Unix
socket of its own in the private folder. Every socket answers only this Unix user (SO_PEERCRED). A
connection ends after its idle time, when it dies, or when asked (`berth server disconnect`); the
process ends when it holds none.

A connection's protocol, one request per Unix connection, JSON lines: {"op": "info"}, {"op": "call",
...}, {"op": "replace_agent", ...}, {"op": "send", ...} and {"op": "file", ...} (keeper_files.py),
{"op": "exit"}; a call's answer is its events, a {"beat": 1}
every second while it runs (the client knows a hung keeper from a slow command), then a result or an
error."""
from __future__ import annotations

import json
import os
import socket
import struct
import sys
import threading
import time

from . import keeper_files
from .transport import SendStopped

HEARTBEAT = 1.0  # seconds between beats while a call runs
MAX_REQUEST = 16 << 20  # bytes of one request line (an upload of 50 000 files names them in a few MB)
CHECK = 1.0  # how often the connection's liveness and the idle time are looked at


class Keeper:
    """One held connection on its own socket, served by a thread of the keeper process."""

    def __init__(self, transport, name: str, path: str, idle: float):
        self.transport, self.name, self.path, self.idle = transport, name, path, idle
        self.since = time.time()
        self.last_used = time.monotonic()
        self.calls = 0
        self.active = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.inode = os.stat(path).st_ino

    def serve(self, listener: socket.socket) -> None:
        listener.settimeout(CHECK)
        try:
            while not self.stop.is_set():
                try:
                    conn, _ = listener.accept()
                except socket.timeout:
                    self._check()
                    continue
                threading.Thread(target=self._handle, args=(conn,), daemon=True).start()
        finally:
            try:
                if os.stat(self.path).st_ino == self.inode:  # not a newer keeper's, started after we hung
                    os.unlink(self.path)
            except OSError:
                pass
            listener.close()
            self.transport.close()

    def _check(self) -> None:
        """Ends the keeper when its link is gone (the next call connects afresh) or it was idle long enough."""
        with self.lock:
            idle = self.active == 0 and time.monotonic() - self.last_used > self.idle
        if idle or not self.transport.connected():
            self.stop.set()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            out, request = _accepted(conn)
            if request is None or self.stop.is_set():  # told to go: answers no one (a caller goes direct)
                return
            op = request.get("op")
            if op == "info":
                out.send(self.info())
            elif op == "exit":
                out.send({"result": "bye"})
                self.stop.set()
            elif op == "call":
                self._call(request, out)
            elif op == "replace_agent":
                self._guarded(out, lambda: self.transport.replace_agent(str(request.get("why", ""))))
            elif op == "send":
                self._guarded(out, lambda: keeper_files.send(self.transport, request, out, conn))
            elif op == "file":
                self._guarded(out, lambda: keeper_files.file_op(self.transport, request))

    def info(self) -> dict:
        t = self.transport
        with self.lock:
            idle_for = 0.0 if self.active else time.monotonic() - self.last_used
        return {"pid": os.getpid(), "server": self.name, "home": t.resolve("~"), "launcher": t.ensure_agent(),
                "shell_prefix": t.shell_prefix(), "since": self.since, "idle_for": round(idle_for, 1),
                "idle_limit": self.idle, "calls": self.calls, "files": getattr(t, "file_path_kind", "")}

    def _call(self, request: dict, out: "_Writer") -> None:
        from .agent_install import agent_argv

        t, command, body = self.transport, str(request.get("command")), str(request.get("request", "")).encode()

        def run():
            if request.get("session"):
                return t._run_in_session(command, body, lambda e: out.send({"event": e}))
            return t._run_agent(command, agent_argv(t.ensure_agent(), command), body,
                                lambda e: out.send({"event": e}))

        self._guarded(out, run)

    def _guarded(self, out: "_Writer", work) -> None:
        """work() with beats sent while it runs; its result or its error (as the client raises it again)."""
        from app.errors import BerthError

        with self.lock:
            self.active += 1
            self.calls += 1
        done = threading.Event()

        def beat():
            while not done.wait(HEARTBEAT):
                out.send({"beat": 1})

        threading.Thread(target=beat, daemon=True).start()
        try:
            out.send({"result": work()})
        except BerthError as e:
            out.send({"error": {"kind": "remote", "message": e.message, "code": e.code, "detail": e.detail}})
        except SendStopped as e:
            out.send({"error": {"kind": "stopped", "message": str(e) or "stopped"}})
        except (OSError, EOFError) as e:  # errno kept: an upload tells a full disk by it
            out.send({"error": {"kind": "os", "message": getattr(e, "strerror", None) or str(e) or type(e).__name__,
                                "errno": getattr(e, "errno", None), "lost": isinstance(e, (ConnectionError, EOFError))}})
        except Exception as e:  # noqa: BLE001 - said to the client, which fails with it
            out.send({"error": {"kind": "remote", "message": f"{self.name}: the held connection failed: {e}",
                                "code": "failed", "detail": {}}})
        finally:
            done.set()
            with self.lock:
                self.active -= 1
                self.last_used = time.monotonic()


class _Writer:
    """Lines to one client from the call's thread and its beat thread; a client gone is ignored."""

    def __init__(self, conn: socket.socket):
        self.conn, self.lock = conn, threading.Lock()

    def send(self, message: dict) -> None:
        data = (json.dumps(message, default=str) + "\n").encode()
        with self.lock:
            try:
                self.conn.sendall(data)
            except OSError:
                pass


def _accepted(conn: socket.socket):
    """(writer, the request) from a caller of this Unix user; (writer, None) for anyone else."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    out = _Writer(conn)
    if uid != os.getuid():
        out.send({"error": {"kind": "refused", "message": "not this keeper's user"}})
        return out, None
    conn.settimeout(10)
    try:
        line = conn.makefile("rb").readline(MAX_REQUEST + 1)
        if len(line) > MAX_REQUEST:  # not buffered for ever: a request is one line, an upload's file list at most
            out.send({"error": {"kind": "remote", "code": "failed",
                                "message": f"request too long (over {MAX_REQUEST} bytes)"}})
            return out, None
        request = json.loads(line or b"{}")
    except (OSError, ValueError):
        return out, None
    return out, request if isinstance(request, dict) else None


def _bind(path: str) -> socket.socket:
    """A listening socket at `path` (0600: umask 077), replacing a dead one's file."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            os.unlink(path)  # a dead keeper's (its starter checked that nobody answers there)
        except FileNotFoundError:
            pass
        listener.bind(path)
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    return listener


class Process:
    """The control socket: opens connections (one at a time per connection key), lists nothing
    (each connection's socket answers for itself); ends when it holds no connection."""

    GRACE = 3.0  # seconds with no connection before the process ends

    def __init__(self):
        self.held: dict[str, Keeper] = {}
        self.lock = threading.Lock()
        self.gates: dict[str, threading.Lock] = {}
        self.opening = 0
        self.empty_since = time.monotonic()

    def serve(self, listener: socket.socket, path: str) -> None:
        inode = os.stat(path).st_ino
        listener.settimeout(CHECK)
        try:
            while True:
                try:
                    conn, _ = listener.accept()
                except socket.timeout:
                    with self.lock:
                        alive = {k: v for k, v in self.held.items() if not v.stop.is_set()}
                        self.held = alive
                        if alive or self.opening:
                            self.empty_since = time.monotonic()
                        elif time.monotonic() - self.empty_since > self.GRACE:
                            return
                    continue
                threading.Thread(target=self._handle, args=(conn,), daemon=True).start()
        finally:
            try:
                if os.stat(path).st_ino == inode:
                    os.unlink(path)
            except OSError:
                pass
            listener.close()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            out, request = _accepted(conn)
            if request is None:
                return
            if request.get("op") == "ping":
                out.send({"ok": True, "pid": os.getpid()})
            elif request.get("op") == "open":
                with self.lock:
                    self.opening += 1
                try:
                    out.send(self._open(request))
                except (KeyError, TypeError, ValueError, AttributeError) as e:  # not a request held.py sends
                    out.send({"ok": False, "error": {"code": "failed", "message": f"a malformed request: {e!r}"}})
                finally:
                    with self.lock:
                        self.opening -= 1

    def _open(self, request: dict) -> dict:
        from app.store.servers import ServerConfig

        from .connect import known_hosts, open_transport
        from .errors import RemoteError
        from .held_key import connection_key, socket_path
        from .sshconfig import resolve

        key, path = str(request["key"]), str(request["socket"])
        server = ServerConfig(**request["server"])
        if path != str(socket_path(server.name, key)):  # only where the key names it, in the private folder
            return {"ok": False, "error": {"code": "failed", "message": f"not a held connection's socket: {path}"}}
        with self.lock:
            gate = self.gates.setdefault(key, threading.Lock())
        with gate:  # two callers asking for one connection open it once
            with self.lock:
                kept = self.held.get(key)
                others = [k for k in self.held.values() if k.name == server.name and k is not kept]
            if kept is not None and not kept.stop.is_set():
                return {"ok": True}
            for other in others:  # the server's entry, its config or its known hosts changed: the old one goes
                other.stop.set()
            try:
                alias = resolve(server.ssh_alias) if server.ssh_alias else None
                if connection_key(server, alias, known_hosts(alias)) != key:
                    return {"ok": False, "error": {"code": "changed", "message": "the connection's settings differ"}}
                transport = open_transport(server)
                transport.name = server.name
                transport.ensure_agent()
            except (RemoteError, OSError, ValueError) as e:
                return {"ok": False, "error": {"code": getattr(e, "code", "failed"),
                                               "message": getattr(e, "message", str(e))}}
            try:
                listener = _bind(path)
            except OSError as e:
                transport.close()
                return {"ok": False, "error": {"code": "failed", "message": f"cannot listen on {path}: {e}"}}
            keeper = Keeper(transport, server.name, path, float(request.get("idle") or 600))
            with self.lock:
                self.held[key] = keeper
            threading.Thread(target=keeper.serve, args=(listener,), daemon=True).start()
            return {"ok": True}


ARG = "--keeper"  # `berth --keeper CONTROL` (app/__main__.py): how held.py starts it, frozen build or not


def main(argv: list[str] | None = None) -> int:
    from .held_key import control_path

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] != str(control_path()):  # only where held.py would start it: not by hand
        print(f"berth: {ARG} starts the keeper of Berth's held connections; held.py runs it, not a person",
              file=sys.stderr)
        return 2
    control = args[0]
    if os.fork():  # the starter waits for this parent, not for the keeper: the keeper is nobody's child
        os._exit(0)
    os.setsid()
    os.umask(0o077)
    try:
        listener = _bind(control)
    except OSError as e:
        os.write(1, (json.dumps({"ok": False, "message": str(e)}) + "\n").encode())
        return 1
    os.write(1, (json.dumps({"ok": True, "pid": os.getpid()}) + "\n").encode())
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)
    os.close(null)
    Process().serve(listener, control)
    return 0


if __name__ == "__main__":
    sys.exit(main())
