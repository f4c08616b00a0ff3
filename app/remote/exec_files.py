"""The Transport's file primitives without SFTP, for hardened servers whose sshd has no `Subsystem
sftp`: a small stdlib snippet on an exec channel, under the same `python3 -I -B -S` the agent runs on.
Small calls go to one long-lived copy per connection as JSON lines on its stdin (paths never reach
a shell; its argv is shlex-quoted like every exec command line). An upload runs several streams
(sftp_send.send_streams), each a copy of its own taking its files one after another: a JSON header,
then the raw bytes, written at the resume offset (truncating there)."""
from __future__ import annotations

import errno
import json
import os
import shlex
import threading
from collections.abc import Callable

import paramiko

from .agent_install import PYTHON  # the agent's own python3, as agent_argv runs it
from .errors import RemoteError
from .sftp_files import FILE_TIMEOUT, timed_out
from .sftp_send import STREAMS, send_streams, server_refused
from .transport import SendJob, SendStopped

HELPER_START_S = 30.0  # a helper's first answer may wait for a login shell's start-up files (pyenv init...)

SNIPPET = r"""
import json, os, shutil, sys
os.umask(0o077)  # as the agent: whatever the login's umask, nothing written here is open to others
class NotAFolder(Exception):
    pass
def mkdirs(p):
    cur = ""
    for part in p.strip("/").split("/"):
        cur += "/" + part
        try:
            os.mkdir(cur)
        except FileExistsError:
            if not os.path.isdir(cur):
                raise NotAFolder("%s exists on the server and is not a folder" % cur)
def quietly(fn, p):
    try:
        fn(p)
    except FileNotFoundError:
        pass
OPS = {
    "home": lambda a, d: os.getcwd(),
    "exists": lambda a, d: os.path.exists(a["path"]),
    "mkdirs": lambda a, d: mkdirs(a["path"]),
    "chmod": lambda a, d: os.chmod(a["path"], a["mode"]),
    "rename": lambda a, d: os.rename(a["path"], a["dst"]),
    "remove_file": lambda a, d: quietly(os.remove, a["path"]),
    "remove_tree": lambda a, d: quietly(shutil.rmtree, a["path"]),
    "write_bytes": lambda a, d: write_bytes(a["path"], d),
}
def write_bytes(p, d):
    with open(p, "wb") as f:
        f.write(d)
def answer(fn, a, d=b""):
    try:
        return {"ok": fn(a, d)}
    except NotAFolder as e:
        return {"error": str(e), "code": "not_a_folder"}
    except OSError as e:
        return {"error": "%s: %s" % (e.strerror or e, e.filename or a.get("path")), "errno": e.errno}
def write(a, d=None):
    # from the offset on (truncated there): a["size"] bytes of stdin, or (None) all of it
    off, left, n = a["offset"], a.get("size"), 0
    fd = os.open(a["path"], os.O_WRONLY | (0 if off else os.O_CREAT | os.O_TRUNC), 0o666)
    with os.fdopen(fd, "wb") as f:
        if off:
            f.truncate(off)
            f.seek(off)
        while left is None or left > 0:
            chunk = inp.read1(1 << 20 if left is None else min(left, 1 << 20))
            if not chunk:  # the sender stopped: what came is kept, to be resumed
                break
            f.write(chunk)
            n += len(chunk)
            if left is not None:
                left -= len(chunk)
    return n
inp, out = sys.stdin.buffer, sys.stdout
if sys.argv[1] == "write":  # one file streamed on stdin, then one answer
    out.write(json.dumps(answer(write, json.loads(sys.argv[2]))) + "\n")
else:  # serve: a JSON line per request (its bytes follow it), a JSON line per answer
    while True:
        line = inp.readline()
        if not line:
            break
        req = json.loads(line)
        if req.get("op") == "write_at":  # an upload's bytes, read as they come
            res = answer(write, req)
        else:
            size = req.get("size", 0)
            data = inp.read(size) if size else b""
            fn = OPS.get(req.get("op"))
            res = answer(fn, req, data) if fn else {"error": "unknown file operation"}
        out.write(json.dumps(res) + "\n")
        out.flush()
        if "error" in res and req.get("op") == "write_at":
            break  # the rest of its bytes are still on the way: this helper is done
"""


def command_line(mode: str, args: dict) -> str:
    """The exec command: every word quoted, the paths inside one JSON word."""
    return " ".join(shlex.quote(w) for w in (*PYTHON, "-c", SNIPPET, mode, json.dumps(args)))


def raise_for(answer: dict, where: str, op: str):
    """A snippet's answer: its value, or its error as OSError (errno kept: FileNotFoundError, ...) or
    RemoteError."""
    if not isinstance(answer, dict):
        raise RemoteError(f"{where}: the file {op} gave no answer")
    if "error" in answer:
        if answer.get("code") == "not_a_folder":
            raise RemoteError(answer["error"])
        raise server_refused(answer.get("errno") or errno.EIO, answer["error"])
    return answer["ok"]


class ExecFiles:
    """The small file calls go to one long-lived snippet per connection (a python3 start per call
    cost ~0.4 s, and installing the agent makes ~70), one request at a time under a lock, each with a
    timeout; it is started again after it died or timed out. Uploads use one helper per stream."""
    kind = "exec"

    def __init__(self, client: paramiko.Transport, where: str, timeout: float = FILE_TIMEOUT):
        self._client, self.where, self.timeout = client, where, timeout
        self._lock = threading.Lock()
        self._server = None  # (channel, its stdout as a file)

    def _start(self, mode: str, args: dict) -> paramiko.Channel:
        chan = self._client.open_session(timeout=self.timeout)
        chan.settimeout(self.timeout)
        chan.exec_command(command_line(mode, args))
        return chan

    def call(self, op: str, args: dict, data: bytes = b""):
        with self._lock:
            try:
                fresh = self._server is None
                if fresh:
                    chan = self._start("serve", {})
                    chan.settimeout(max(self.timeout, HELPER_START_S))
                    self._server = (chan, chan.makefile("rb"))
                chan, out = self._server
                chan.sendall(json.dumps(dict(args, op=op, size=len(data))).encode() + b"\n" + data)
                line = out.readline()
                if fresh:
                    chan.settimeout(self.timeout)
            except TimeoutError:
                self._drop()
                raise timed_out(self.where, self.timeout) from None
            except OSError as e:
                self._drop()
                raise ConnectionError(f"lost the file channel to {self.where} ({e})") from None
            if not line:
                err = self._stderr()
                self._drop()
                if "python3: not found" in err or "python3: command not found" in err:
                    raise RemoteError("python3 was not found on the server; install Python 3.8 or newer there")
                raise ConnectionError(f"the file helper on {self.where} ended during {op}: "
                                      f"{(err.strip().splitlines() or ['no output'])[-1]}")
        try:
            answer = json.loads(line)
        except ValueError:
            answer = None
        return raise_for(answer, self.where, op)

    def _stderr(self) -> str:
        chan = self._server[0]
        try:
            chan.status_event.wait(2)
            return chan.makefile_stderr("rb").read().decode("utf-8", "replace") if chan.recv_stderr_ready() else ""
        except OSError:
            return ""

    def _drop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server[0].close()

    def home(self) -> str:
        return self.call("home", {})

    def exists(self, path: str) -> bool:
        return bool(self.call("exists", {"path": path}))

    def mkdirs(self, path: str) -> None:
        self.call("mkdirs", {"path": path})

    def put(self, local, remote: str, progress: Callable[[int, int], None] | None = None) -> None:
        size = os.path.getsize(local)
        with open(local, "rb") as src, self.open_write(remote, 0) as dst:
            done = 0
            while chunk := src.read(1 << 20):
                dst.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, size)

    def write_bytes(self, remote: str, data: bytes) -> None:
        self.call("write_bytes", {"path": remote}, data)

    def chmod(self, path: str, mode: int) -> None:
        self.call("chmod", {"path": path, "mode": mode})

    def rename(self, src: str, dst: str) -> None:
        self.call("rename", {"path": src, "dst": dst})

    def remove_tree(self, path: str) -> None:
        self.call("remove_tree", {"path": path})

    def remove_file(self, path: str) -> None:
        self.call("remove_file", {"path": path})

    def open_write(self, remote: str, offset: int) -> "ExecWriter":
        return ExecWriter(self, remote, offset)

    def send_files(self, jobs: list[SendJob], on_bytes, should_stop, streams: int = STREAMS) -> None:
        send_streams(lambda: _ExecStream(self), jobs, on_bytes, should_stop, streams)

    def close(self) -> None:
        with self._lock:
            self._drop()


class ExecWriter:
    """A file on the server written through one exec channel's stdin; close() waits for the snippet
    to say how many bytes it wrote (what was sent before a stop stays, to be resumed)."""

    def __init__(self, files: ExecFiles, remote: str, offset: int):
        self._files, self.remote, self.offset = files, remote, offset
        self._chan = files._start("write", {"path": remote, "offset": offset})
        self.sent = 0
        self._closed = False

    def write(self, data: bytes) -> None:
        try:
            self._chan.sendall(data)
        except TimeoutError:
            self._chan.close()
            raise timed_out(self._files.where, self._files.timeout) from None
        except OSError:  # the snippet ended (a full disk?): its answer says why, else the link is gone
            self._finish()
            raise
        self.sent += len(data)

    def _finish(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._chan.shutdown_write()
        except OSError:
            pass
        try:
            line = self._chan.makefile("rb").readline()
        except TimeoutError:
            raise timed_out(self._files.where, self._files.timeout) from None
        finally:
            self._chan.close()
        if not line:
            raise ConnectionError(f"lost the connection to {self._files.where} while writing {self.remote}")
        try:
            answer = json.loads(line)
        except ValueError:
            answer = None
        written = raise_for(answer, self._files.where, "write")
        if written != self.sent:
            raise ConnectionError(f"{self.remote}: {self.sent} bytes sent, the server wrote {written}")

    def close(self) -> None:
        self._finish()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _ExecStream:
    """One upload stream: a helper of its own that takes the stream's files one after another
    (one python3 start per stream, not per file)."""

    def __init__(self, files: ExecFiles):
        self.files = files
        self.chan = files._start("serve", {})
        self.chan.settimeout(max(files.timeout, HELPER_START_S))  # its first bytes wait for its start
        self.out = self.chan.makefile("rb")

    def open(self, job: SendJob) -> "_StreamFile":
        return _StreamFile(self, job)

    def close(self) -> None:
        self.chan.close()


class _StreamFile:
    def __init__(self, stream: _ExecStream, job: SendJob):
        self.stream, self.job = stream, job
        self.size, self.sent = job.size - job.offset, 0
        self._send(json.dumps({"op": "write_at", "path": job.remote, "offset": job.offset,
                               "size": self.size}).encode() + b"\n")

    def _send(self, data: bytes) -> None:
        try:
            self.stream.chan.sendall(data)
        except TimeoutError:
            raise timed_out(self.stream.files.where, self.stream.files.timeout) from None
        except OSError:  # the helper ended (a full disk?): its answer says why, else the link is gone
            self._answer()
            raise

    def write(self, data: bytes) -> None:
        self._send(data)
        self.sent += len(data)

    def _answer(self) -> None:
        where = self.stream.files.where
        try:
            line = self.stream.out.readline()
        except TimeoutError:
            raise timed_out(where, self.stream.files.timeout) from None
        if not line:
            raise ConnectionError(f"lost the connection to {where} while writing {self.job.remote}")
        try:
            answer = json.loads(line)
        except ValueError:
            answer = None
        written = raise_for(answer, where, "write")
        if written != self.sent:
            raise ConnectionError(f"{self.job.remote}: {self.sent} bytes sent, the server wrote {written}")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None and self.sent == self.size:
            self._answer()
        else:  # stopped or failed: the helper keeps what came (to be resumed) and ends with the stream
            if exc_type is not None and issubclass(exc_type, SendStopped):
                try:  # wait until what was sent is on the server's disk: the next deploy resumes from it
                    self.stream.chan.shutdown_write()
                    self._answer()
                except (OSError, RemoteError):
                    pass
            self.stream.chan.close()
            if exc_type is None:
                raise ConnectionError(f"{self.job.local}: {self.sent} of {self.size} bytes read; did it change?")
