"""A CLI call's connection held for the next one: the first call to a server starts a keeper
(keeper.py) holding the authenticated connection and its agent session; later calls reach it over
its Unix socket (held_key.py names it) and skip handshake, login and session start.

A call through a keeper behaves as a direct one: `HeldTransport` is a Transport whose agent calls,
uploads and path operations only cross the socket (the protocol, the activity log and the audit
stay this process's); a file object, an HTTP tunnel or a stream opens a direct connection when
first used. A keeper found gone before a call, or gone or silent (no beat for SILENCE seconds)
during a read-only one, makes that call go direct, once; during a change or an upload, the call
fails saying so."""
from __future__ import annotations

import fcntl
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from app.store.servers import ServerConfig

from .errors import ConnectFailed, RemoteError
from .held_key import connection_key, control_path, fits, idle_seconds, socket_dir, socket_path
from .transport import READ_ONLY, SendStopped, Transport

SILENCE = 10.0  # seconds without a beat or an event: the keeper is hung
ASK_TIMEOUT = 2.0  # an info or exit request to a keeper
AGAIN = READ_ONLY + ("sample", "whoami", "policy.show")  # change nothing: may go direct after a keeper died


class KeeperGone(Exception):
    def __init__(self, sent: bool, why: str):
        super().__init__(why)
        self.sent = sent


def open_held(server: ServerConfig, direct: Callable[[], Transport], setting: str = "",
              on_failed: Callable[[RemoteError], None] | None = None) -> Transport | None:
    """A transport through the server's keeper, started when there is none. None: hold nothing
    here (turned off, a path too long, a keeper that could not connect for a reason the direct
    path says better, such as a host key): the caller connects directly, as without keepers. A
    server that does not answer at all raises its ConnectFailed (`on_failed` first), not twice."""
    idle = idle_seconds(setting)
    if not idle:
        return None
    from .connect import known_hosts
    from .sshconfig import SSHConfigError, resolve

    try:
        alias = resolve(server.ssh_alias) if server.ssh_alias else None
        path = socket_path(server.name, connection_key(server, alias, known_hosts(alias)))
    except PermissionError as e:  # a socket folder not ours, open to others or a symlink: said, never used
        _say_once(f"berth: connecting directly: {e}")
        return None
    except (SSHConfigError, OSError):
        return None
    if not fits(path):
        return None
    info = ask(path, {"op": "info"})
    if info is None:
        error = _start_once(server, path, idle)  # retires the server's other connections too
        if error is not None:
            if error.get("code") == "unreachable":
                e = ConnectFailed(error.get("message", f"{server.name}: unreachable"))
                if on_failed is not None:
                    on_failed(e)
                raise e
            return None
        info = ask(path, {"op": "info"})
    return HeldTransport(server, path, info, direct) if info and "pid" in info else None


_SAID: set[str] = set()


def _say_once(text: str) -> None:
    """One line on stderr (the CLI's: only it holds connections), once per process however many servers."""
    if text not in _SAID:
        _SAID.add(text)
        print(text, file=sys.stderr)


class HeldTransport(Transport):
    """Stands for an SSHTransport to the server: the agent over the keeper, the rest direct."""

    def __init__(self, server: ServerConfig, path: Path, info: dict, direct: Callable[[], Transport]):
        from .ssh import DEFAULT_COMMAND_TIMEOUT

        super().__init__(server.root)
        self.name, self.host, self.port, self.ssh_user = server.name, server.host, server.port, server.user
        self.key_path = server.key_path
        self.command_timeout = server.command_timeout or DEFAULT_COMMAND_TIMEOUT  # applied by the keeper
        self.key_added = False
        self.path, self.keeper_pid = path, info["pid"]
        self._home, self._agent_path, self._prefix = info["home"], info["launcher"], info["shell_prefix"]
        self._opener, self._direct = direct, None

    # -- the agent, through the keeper -----------------------------------------------------
    def resolve(self, path):
        if path == "~" or path.startswith("~/"):
            return self._home + path[1:]
        return path if path.startswith("/") else f"{self._home}/{path}"

    def ensure_agent(self) -> str:
        return self._direct.ensure_agent() if self._direct else self._agent_path

    def shell_prefix(self) -> list[str]:
        return list(self._prefix)

    def _run_in_session(self, command, request, on_event):
        return self._through(command, request, on_event, True, None)

    def _run_agent(self, command, argv, request, on_event):
        return self._through(command, request, on_event, False, argv)

    def _through(self, command, request, on_event, session, argv):
        if self._direct is None:
            try:
                return self._keeper_call(command, request, on_event, session)
            except KeeperGone as e:
                if e.sent and command not in AGAIN:
                    raise RemoteError(f"{self.name}: Berth's held connection ended during {command} ({e}). The "
                                      f"server finishes or undoes the change by itself; check with `berth status`",
                                      "connection_lost") from None
                self._go_direct()
        if session:
            return self._direct._run_in_session(command, request, on_event)
        return self._direct._run_agent(command, argv, request, on_event)

    def _keeper_call(self, command, request, on_event, session):
        message = {"op": "call", "command": command, "request": request.decode(), "session": session}
        try:
            return self._exchange(message, lambda a: on_event(a["event"]) if "event" in a and on_event else None)
        except OSError as e:  # the keeper's own connection broke during the call: as if the keeper had
            raise KeeperGone(True, str(e) or type(e).__name__) from None

    def _exchange(self, message: dict, on_answer=None, should_stop=None):
        """One request to the keeper: its answers (beats, events, byte counts) to on_answer, then its
        result or its error raised here; `should_stop()` true: the keeper is told to stop (an upload)."""
        try:
            conn = _dial(self.path)
        except OSError as e:
            raise KeeperGone(False, str(e)) from None
        error = None
        with conn:
            try:
                conn.sendall((json.dumps(message) + "\n").encode())
            except OSError as e:
                raise KeeperGone(False, str(e)) from None
            conn.settimeout(SILENCE)
            told = False
            try:
                for line in conn.makefile("rb"):
                    answer = json.loads(line)
                    if "result" in answer:
                        return answer["result"]
                    if "error" in answer:
                        error = answer["error"]
                        break
                    if on_answer is not None:
                        on_answer(answer)
                    if should_stop is not None and not told and should_stop():
                        conn.sendall(b"stop\n")
                        told = True
            except socket.timeout:
                raise KeeperGone(True, f"no sign of life for {SILENCE:g} s") from None
            except (OSError, ValueError) as e:
                raise KeeperGone(True, str(e) or type(e).__name__) from None
        if error is not None:
            raise _raised(error)
        raise KeeperGone(True, "it closed the call without an answer")

    def _go_direct(self):
        """A connection of this call's own from now on, the keeper being gone or hung (told to go)."""
        ask(self.path, {"op": "exit"}, timeout=0.5)
        try:
            self.path.unlink()  # a hung keeper's socket: the next call starts a new one
        except OSError:
            pass
        self._direct = self._opener()
        self._direct.on_activity = None  # this transport logs the calls it carries

    def replace_agent(self, why: str) -> None:
        if self._direct is not None:
            self._direct.replace_agent(why)
            return
        answer = ask(self.path, {"op": "replace_agent", "why": why}, timeout=self.command_timeout)
        if answer is None:
            raise RemoteError(f"{self.name}: Berth's held connection did not answer while replacing the agent; "
                              f"try again", "connection_lost")
        if "error" in answer:
            raise _raised(answer["error"])
        if self.on_agent_replaced is not None:
            self.on_agent_replaced(why)

    # -- an upload and the path operations, through the keeper too ------------------------------
    def send_files(self, jobs, on_bytes, should_stop=lambda: False):
        if self._direct is None:
            message = {"op": "send", "jobs": [[os.path.abspath(j.local), j.remote, j.offset, j.size] for j in jobs]}
            try:
                return self._exchange(message, lambda a: on_bytes(int(a["bytes"])) if "bytes" in a else None,
                                      should_stop)
            except KeeperGone as e:
                self._gone_during(e, "the upload")
        return self._direct.send_files(jobs, on_bytes, should_stop)

    def _file(self, name: str, *args):
        if self._direct is None:
            try:
                return self._exchange({"op": "file", "name": name, "args": list(args)})
            except KeeperGone as e:
                self._gone_during(e, name)
        return getattr(self._direct, name)(*args)

    def _gone_during(self, e: KeeperGone, what: str) -> None:
        """Not sent: a direct connection from now on. Sent: an OSError, as a connection lost during
        it (an upload resumes at the next deploy; a path operation is asked again by nobody)."""
        if e.sent:
            raise ConnectionError(f"Berth's held connection ended during {what} ({e})") from None
        self._go_direct()

    def exists(self, path): return self._file("exists", path)  # noqa: E704
    def mkdirs(self, path): return self._file("mkdirs", path)  # noqa: E704
    def chmod(self, path, mode): return self._file("chmod", path, mode)  # noqa: E704
    def rename(self, src, dst): return self._file("rename", src, dst)  # noqa: E704
    def remove_tree(self, path): return self._file("remove_tree", path)  # noqa: E704
    def remove_file(self, path): return self._file("remove_file", path)  # noqa: E704

    # -- the rest, over a direct connection opened when first needed --------------------------
    # (a file object to write into, an HTTP tunnel and a stream are live objects of a connection:
    # the CLI's changes use none of them; predict and the console's streams are not held)
    def _files(self) -> Transport:
        if self._direct is None:
            self._go_direct_files()
        return self._direct

    def _go_direct_files(self):
        self._direct = self._opener()
        self._direct.on_activity = self.on_activity

    def put(self, local, remote, progress=None): return self._files().put(local, remote, progress)  # noqa: E704
    def write_bytes(self, remote, data): return self._files().write_bytes(remote, data)  # noqa: E704
    def open_write(self, remote, offset): return self._files().open_write(remote, offset)  # noqa: E704

    def http(self, port, method, path, body=None, timeout=30.0):
        return self._files().http(port, method, path, body, timeout)

    def stream(self, command, payload=None):
        return self._files().stream(command, payload)

    @property
    def file_path_kind(self) -> str:
        return getattr(self._files(), "file_path_kind", "")

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()


def _raised(error: dict) -> Exception:
    if error.get("kind") == "stopped":
        return SendStopped(error.get("message", "stopped"))
    if error.get("kind") == "os":  # the keeper's OSError as it was: a lost link, a full disk (its errno), ...
        message = error.get("message", "lost the connection")
        if error.get("lost", True):
            return ConnectionError(message)
        return OSError(int(error["errno"]), message) if error.get("errno") else OSError(message)
    return RemoteError(error.get("message", "the held connection failed"), error.get("code") or "failed",
                       error.get("detail") or {})


def _dial(path: Path, timeout: float | None = None) -> socket.socket:
    """A connection to the keeper at `path`, which must run as this user (SO_PEERCRED both ways)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(ASK_TIMEOUT if timeout is None else timeout)
        conn.connect(str(path))
        _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                              struct.calcsize("3i")))
        if uid != os.getuid():
            raise PermissionError(f"{path} is served by another user (uid {uid})")
    except BaseException:
        conn.close()
        raise
    return conn


def ask(path: Path, message: dict, timeout: float | None = None) -> dict | None:
    """One request's one answer; None when nobody answers there."""
    try:
        with _dial(path, timeout) as conn:
            conn.sendall((json.dumps(message) + "\n").encode())
            line = conn.makefile("rb").readline()
        return json.loads(line) if line else None
    except (OSError, ValueError):
        return None


def _start_once(server: ServerConfig, path: Path, idle: int) -> dict | None:
    """Ask the keeper process to open the connection (it opens one once, whoever asks); the
    process is started first when none answers (a lock file: one caller starts it). None when the
    connection is held now, else why not."""
    from dataclasses import asdict

    from .ssh import DEFAULT_TIMEOUT

    timeout = (server.connect_timeout or DEFAULT_TIMEOUT) * 3 + 5  # TCP, SSH and login, then the agent's check
    deadline = time.monotonic() + timeout
    control = control_path()
    if ask(control, {"op": "ping"}) is None:
        with open(f"{control}.lock", "a") as lock:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        return {"code": "busy", "message": "another call is still starting the keeper"}
                    time.sleep(0.02)
            try:
                if ask(control, {"op": "ping"}, timeout=0.5) is None:  # not started by a call we waited for
                    said = _spawn(control, deadline)
                    if said is not None:
                        return said
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    key = path.name.split(".")[-2]
    answer = ask(control, {"op": "open", "server": asdict(server), "key": key, "socket": str(path), "idle": idle},
                 timeout=max(1.0, deadline - time.monotonic()))
    if answer is None:
        return {"code": "failed", "message": "the keeper did not answer"}
    return None if answer.get("ok") else answer.get("error", {})


def _spawn(control: Path, deadline: float) -> dict | None:
    """Start the keeper process (it forks away at once); None once its control socket listens."""
    code_root = str(Path(__file__).resolve().parent.parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (code_root, os.environ.get("PYTHONPATH", "")) if p))
    from .keeper import ARG

    # the entry point (app/__main__.py) takes the hidden argument: a frozen build has no `-m`
    argv = [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "app"]
    proc = subprocess.Popen([*argv, ARG, str(control)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd="/", env=env, close_fds=True)
    with proc.stdout:
        proc.wait()  # the first process forks the keeper and ends at once
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        line = proc.stdout.readline() if ready else b""
    try:
        said = json.loads(line)
    except ValueError:
        return {"code": "failed", "message": "the keeper did not start in time"}
    return None if said.get("ok") else {"code": "failed", "message": said.get("message", "the keeper did not start")}


def keepers(name: str | None = None, skip: Path | None = None) -> list[dict]:
    """Every keeper of this Berth home (of server `name`) that answers: its info and socket. Dead
    sockets are removed."""
    folder = socket_dir(create=False)
    found = []
    for sock in sorted(folder.glob(f"{name or '*'}.*.sock")) if folder.exists() else ():
        if sock == skip:
            continue
        info = ask(sock, {"op": "info"})
        if info is None or "pid" not in info:
            try:
                sock.unlink()  # its lock file stays: a starter may hold it
            except OSError:
                pass
            continue
        if name is None or info.get("server") == name:  # "box.*" matches a server named "box.2" too
            found.append(dict(info, socket=str(sock)))
    return found


def retire(name: str | None, keep: Path | None = None) -> list[dict]:
    """Ask the keepers of server `name` (None: all) to exit, but the one at `keep`; returns those asked."""
    gone = []
    for info in keepers(name, skip=keep):
        if ask(Path(info["socket"]), {"op": "exit"}) is not None:
            gone.append(info)
    return gone
