"""The seam between Berth and a server: run the agent, move files, talk HTTP to a runner.

Two implementations: `LocalTransport` (this computer, subprocess) and `SSHTransport` (paramiko).
Both run the very same agent, installed under `<root>/.berth/agent/<version>/`."""
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from app.agent.layout import SHARED_FILE
from app.agent.policy import PRINCIPAL_RE as _UNIX_NAME
from app.agent.queries import agent_version
from app.store.activity import Activity

from . import agent_install
from .activity import by_hand, summarize
from .agent_session import AgentSession, Interactive, SessionDied, ended_during
from .agent_stream import AgentStream, events as _events
from .agent_session import no_answer as _no_answer
from .errors import RemoteError, agent_error

EventHandler = Callable[[dict], None]
Progress = Callable[[int, int], None]
CHUNK = 1 << 20
# may be asked again on a new session when the one they were sent on died: they change nothing
READ_ONLY = ("hello", "status", "releases", "logs", "example", "journal", "sample_once")
# the shape of an agent command's name (`status`, `port.set`, `alert_add`): checked here without
# importing app.agent.main, whose command modules no desktop process needs (0.15 s of `berth status`)
_COMMAND_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
STREAMS = ("sample",)  # never a call of the session: streamed on a channel of their own, or as below
SESSION_STREAMS = {"sample": "sample_stream"}  # a stream's request in the session (app/agent/samplestream.py)


@dataclass(frozen=True)
class SendJob:
    """Send `local`'s bytes from `offset` on into `remote` (created, or continued where a cut upload
    stopped: the bytes before `offset` are already there)."""
    local: Path
    remote: str
    offset: int
    size: int


class SendStopped(OSError):
    """`should_stop()` said so (the operator cancelled); what was sent stays, to be resumed."""


class Transport:
    """Subclasses provide `_exec`, the file primitives and `http`; this class owns the protocol."""

    name: str
    ssh_user: str = ""
    use_session = True  # agent commands go over one long-lived agent (False: a process per command)
    stream_probe_s = 10.0  # a session silent this long answers `hello` before a stream opens on it
    command_timeout: float = 0  # the longest an agent command may stay silent (0: no limit)

    def __init__(self, root: str):
        self.root = root  # as configured; may start with "~"
        self._agent_path: str | None = None
        self._agent_checked = False  # an agent command passed the bootstrap's check on this connection
        # the worker and the monitor stream share a connection: one installs (or replaces) the agent, the
        # other waits for it instead of racing it
        self._agent_lock = threading.RLock()
        self.on_agent_replaced: Callable[[str], None] | None = None  # the workspace audits it
        self.server_info: dict = {}
        self.on_activity: Callable[[Activity], None] | None = None  # the Remote activity log
        self._session: AgentSession | None = None
        self._session_lock = threading.Lock()  # one session is started, however many threads ask

    # -- what subclasses provide ---------------------------------------------------------------
    def _exec(self, argv: list[str], stdin: bytes) -> tuple[Iterable[bytes], Callable[[], tuple[int, str]],
                                                             Callable[[], None]]:
        """Start argv; return (stdout lines, wait() -> (exit code, stderr), abort() that ends it now)."""
        raise NotImplementedError

    def _exec_interactive(self, argv: list[str]) -> Interactive:
        """Start argv with its stdin kept open for writing (the agent session)."""
        raise NotImplementedError

    def resolve(self, path: str) -> str:
        """An absolute path on the server for `path` (expanding a leading ~)."""
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def mkdirs(self, path: str) -> None:
        raise NotImplementedError

    def put(self, local: Path, remote: str, progress: Progress | None = None) -> None:
        raise NotImplementedError

    def write_bytes(self, remote: str, data: bytes) -> None:
        raise NotImplementedError

    def open_write(self, remote: str, offset: int):
        """A binary file object writing `remote` from `offset` (truncated there; created at 0)."""
        raise NotImplementedError

    def send_files(self, jobs: list[SendJob], on_bytes: Callable[[int], None],
                   should_stop: Callable[[], bool] = lambda: False) -> None:
        """Send every job; `on_bytes(n)` after each chunk (from any thread). One file at a time here;
        SSH sends several at once."""
        for job in jobs:
            send_one(self, job, on_bytes, should_stop)

    def send(self, jobs: list[SendJob], on_bytes: Callable[[int], None],
             should_stop: Callable[[], bool] = lambda: False) -> None:
        """send_files, written to the Remote activity log (one line for the whole upload)."""
        started = time.monotonic()
        payload = {"files": len(jobs), "bytes": sum(j.size - j.offset for j in jobs),
                   "resumed_bytes": sum(j.offset for j in jobs)}
        try:
            self.send_files(jobs, on_bytes, should_stop)
        except OSError as e:
            self._log_upload(payload, started, "stopped" if isinstance(e, SendStopped) else "failed", str(e))
            raise
        self._log_upload(payload, started, "ok")

    def _log_upload(self, payload, started, outcome, message="") -> None:
        if self.on_activity is not None:
            self._record(Activity(self.name, "upload", summarize(payload), time.monotonic() - started, outcome,
                                  message[:500]))

    def chmod(self, path: str, mode: int) -> None:
        raise NotImplementedError

    def rename(self, src: str, dst: str) -> None:
        raise NotImplementedError

    def remove_tree(self, path: str) -> None:
        raise NotImplementedError

    def remove_file(self, path: str) -> None:
        """Remove one file; a missing file is not an error."""
        raise NotImplementedError

    def http(self, port: int, method: str, path: str, body: bytes | None = None,
             timeout: float = 30.0) -> tuple[int, dict, bytes]:
        raise NotImplementedError

    def close(self) -> None:
        self.end_session()

    def connected(self) -> bool:
        """Is the link to the server still up (SSH: the session, not just this one command)?"""
        return True

    def lost_why(self) -> str:
        """Why the link ended, when Berth ended it itself (a server that stopped answering); else ""."""
        return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the agent protocol --------------------------------------------------------------------
    @property
    def abs_root(self) -> str:
        return self.resolve(self.root)

    def agent(self, command: str, payload: dict | None = None, on_event: EventHandler | None = None) -> dict:
        """Run one agent command; progress events go to `on_event`; returns its result. An agent
        found modified is replaced (and that reported to `on_agent_replaced`), then asked again."""
        try:
            result = self._agent_once(command, payload, on_event)
        except RemoteError as e:
            if e.code != agent_install.AGENT_MODIFIED:
                raise
            self.replace_agent(str(e))
            result = self._agent_once(command, payload, on_event)
        self._agent_checked = True
        return result

    def replace_agent(self, why: str) -> None:
        self.end_session()  # it runs the old files' code: the next command starts one on the new agent
        with self._agent_lock:
            target = self.ensure_agent().rsplit("/", 1)[0]
            self.remove_tree(target)
            self._agent_path = None
            self.ensure_agent()
        if self.on_agent_replaced is not None:
            self.on_agent_replaced(why)

    def _agent_once(self, command, payload, on_event) -> dict:
        argv, request = self._agent_call(command, payload)
        started = time.monotonic()
        try:
            if self.use_session and command not in STREAMS:
                result = self._run_in_session(command, request, on_event)
            else:
                result = self._run_agent(command, argv, request, on_event)
        except RemoteError as e:
            self._log(command, payload, argv, request, started, e.code, str(e))
            raise
        self._log(command, payload, argv, request, started, "ok")
        return result

    def _run_agent(self, command, argv, request, on_event) -> dict:
        try:
            lines, wait, _abort = self._exec(argv, request)
            final = None
            for event in _events(lines):
                if event.get("event") in ("result", "error"):
                    final = event
                elif on_event is not None:
                    on_event(event)
            code, stderr = wait()
        except (OSError, EOFError) as e:
            raise RemoteError(f"{self.name}: {command} was cut off: {e}. The server finishes or undoes the change "
                              f"by itself; check with `berth status`", "connection_lost") from None
        if final is None and code < 0:  # no exit status: the session or the agent died
            raise ended_during(self.name, command, self.connected(), self.lost_why())
        if final is None:
            raise RemoteError(_no_answer(code, stderr), "agent_failed", {"stderr": stderr[-2000:]})
        if final["event"] == "error":
            raise agent_error(final)
        return final["result"]

    def _run_in_session(self, command, request, on_event) -> dict:
        """The command over the connection's agent session (started, or restarted, on demand). A
        session found dead before the request reached it is restarted; once sent, only a read-only
        command is asked again: any other may have changed the server."""
        try:
            return self._agent_session().call(command, request, on_event, self.command_timeout)
        except SessionDied as e:
            if e.sent and command not in READ_ONLY:
                raise ended_during(self.name, command, self.connected(), self.lost_why()) from None
        try:
            return self._agent_session().call(command, request, on_event, self.command_timeout)
        except SessionDied:
            raise ended_during(self.name, command, self.connected(), self.lost_why()) from None

    def _agent_session(self) -> AgentSession:
        with self._session_lock:
            if self._session is not None and not self._session.dead:
                return self._session
            if self._session is not None:
                self._session.close()
                self._session = None
            argv = agent_install.agent_argv(self.ensure_agent(), "session")
            try:
                io = self._exec_interactive(argv)
            except (OSError, EOFError) as e:
                raise RemoteError(f"{self.name}: cannot start the Berth agent: {e}", "connection_lost") from None
            self._session = AgentSession(self.name, io)
            return self._session

    def end_session(self) -> None:
        """Close the agent session (its running commands are cancelled there, as a cut channel did)."""
        with self._session_lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def shell_prefix(self) -> list[str]:
        """How a terminal reaches this server (empty: this computer)."""
        host = getattr(self, "host", "")
        if not host:
            return []
        key = getattr(self, "key_path", "")
        return ["ssh", *(["-i", key] if key else []), "-p", str(getattr(self, "port", 22)), f"{self.ssh_user}@{host}"]

    def _log(self, command, payload, argv, request, started, outcome, message="") -> None:
        if self.on_activity is not None:
            self._record(Activity(self.name, command, summarize(payload or {}), time.monotonic() - started,
                                  outcome, message[:500], by_hand(self.shell_prefix(), argv, request)))

    def _record(self, activity: Activity) -> None:
        try:
            self.on_activity(activity)
        except Exception:  # the log must never break the operation it describes
            pass

    def stream(self, command: str, payload: dict | None = None) -> "AgentStream":
        """Start a long-running agent command (e.g. `sample`); iterate its events as they come.
        close() ends it on the server as well (its next write fails and it exits)."""
        if not self._agent_checked:
            self.agent("hello")  # a modified agent is found and replaced here, not by a failing stream
        argv, request = self._agent_call(command, payload)
        started = time.monotonic()
        if self.use_session and command in SESSION_STREAMS:
            return self._session_stream(command, payload, argv, request, started)
        try:
            lines, wait, abort = self._exec(argv, request)
        except (OSError, EOFError) as e:
            self._log(command, payload, argv, request, started, "connection_lost", str(e))
            raise RemoteError(f"{self.name}: cannot start {command}: {e}", "connection_lost") from None
        self._log(command, payload, argv, request, started, "started")
        return AgentStream(self.name, command, lines, wait, abort)

    def _session_stream(self, command, payload, argv, request, started):
        """The stream as a request of the agent session: no second login shell or interpreter. A
        session silent for `stream_probe_s` (a stream on it stalled) answers `hello` first or is
        ended, so the next try starts a fresh one: a stopped or hung agent is not streamed from for
        ever. A session found dead before the request went out is started again, once."""
        def lost():
            return ended_during(self.name, command, self.connected(), self.lost_why())

        for last in (False, True):
            try:
                session = self._agent_session()
                if time.monotonic() - session.heard > self.stream_probe_s:
                    self._probe(session)
                stream = session.stream(SESSION_STREAMS[command], request, command, lost)
                break
            except SessionDied as e:
                if e.sent or last:
                    self._log(command, payload, argv, request, started, "connection_lost", "the agent session ended")
                    raise lost() from None
        self._log(command, payload, argv, request, started, "started")
        return stream

    def _probe(self, session: AgentSession) -> None:
        try:
            session.call("hello", self._agent_call("hello", None)[1], None, self.stream_probe_s)
        except SessionDied:
            raise SessionDied(sent=False) from None  # hello changes nothing: a new session is started
        except RemoteError as e:
            if e.code != "connection_lost":
                raise
            self.end_session()
            raise RemoteError(f"{self.name}: the Berth agent session did not answer for {self.stream_probe_s:g} s; "
                              f"it was ended, and the next try starts a new one", "connection_lost") from None

    def _agent_call(self, command: str, payload: dict | None) -> tuple[list[str], bytes]:
        """The argv and the JSON request of one agent command (the request carries the root)."""
        if not _COMMAND_NAME.fullmatch(command):  # a name from Berth's code; the agent refuses one it lacks
            raise ValueError(f"unknown agent command {command!r}")
        request = dict(payload or {}, root=self.abs_root)
        return agent_install.agent_argv(self.ensure_agent(), command), json.dumps(request).encode()

    def ensure_agent(self) -> str:
        """Install this Berth's agent on the server once; returns the launcher's path."""
        with self._agent_lock:
            if self._agent_path:
                return self._agent_path
            target = f"{self.abs_root}/.berth/agent/{agent_version()}"
            try:
                shared = self.exists(f"{self.abs_root}/.berth/{SHARED_FILE}")
            except PermissionError:  # another user's private .berth: installing there fails, and says so
                shared = False
            if shared:  # each member's own agent, private to them (`berth server init-shared-root`)
                target = f"{self.abs_root}/.berth/agent/{_login_name(self.ssh_user)}/{agent_version()}"
            launcher = f"{target}/agent.py"
            if not self.exists(launcher):
                agent_install.install(self, target, shared)
            self._agent_path = launcher
            return launcher

    def hello(self, hashes: list[str] | None = None, model: str = "") -> dict:
        """The server's facts (Python, platform, root, disk), which of `hashes` it lacks and, given a
        `model`, its versions there with their sha256 (`releases`)."""
        self.server_info = self.agent("hello", {"hashes": hashes or [], **({"model": model} if model else {})})
        return self.server_info


def _login_name(user: str) -> str:
    """The folder of this login's agent in a shared root: its Unix name (the local user for `local`)."""
    import getpass

    name = user or getpass.getuser()
    if not _UNIX_NAME.fullmatch(name):
        raise RemoteError(f"cannot use a shared root as {name!r}: not a plain Unix user name", "usage")
    return name


def send_one(transport: Transport, job: SendJob, on_bytes: Callable[[int], None],
             should_stop: Callable[[], bool]) -> None:
    with open(job.local, "rb") as src, transport.open_write(job.remote, job.offset) as dst:
        src.seek(job.offset)
        while chunk := src.read(CHUNK):
            if should_stop():
                raise SendStopped(f"sending {job.local.name} stopped")
            dst.write(chunk)
            on_bytes(len(chunk))


def http_exchange(conn, method: str, path: str, body: bytes | None) -> tuple[int, dict, bytes]:
    """One request on an HTTPConnection (TCP or an SSH channel); returns status, headers, body."""
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()
