"""Work off the GUI thread, results back on it.

One serial worker thread per server: operations on that server run one after another on it and
reuse one connection, which the live sample stream shares (app/remote/shared.py); each of its
channels is used by one thread at a time. One small pool for work that needs no server (bundle checks,
database queries). Each worker thread has its own Workspace (SQLite connections stay in the
thread that opened them). Results, errors and progress come back as Qt signals, delivered on the
GUI thread; `work` never touches a widget.
"""
import queue
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import QObject, Qt, Signal
from shiboken6 import isValid

from app.errors import is_connection_error
from app.remote.errors import HostKeyChanged, RemoteError, UnknownHostKey
from app.workspace import Workspace

# what `TaskRunner.server_state` says about a server's connection
CONNECTING, CONNECTED, UNREACHABLE, HOST_KEY = "connecting", "connected", "unreachable", "hostkey"


class Task(QObject):
    """One piece of background work.

    Signals (always on the GUI thread):
        progressed(object): a value the work reported (e.g. a deploy Progress)
        finished(object): the work's return value
        failed(object): the exception it raised (with `.trace` text for the details)
    """

    progressed = Signal(object)
    finished = Signal(object)
    failed = Signal(object)

    def __init__(self, label: str, runner: "TaskRunner", owner: QObject | None):
        super().__init__()
        self.label = label
        self._runner = runner
        self.owner = owner  # a widget whose slots get the answer: nothing is delivered once it is gone
        self.cancel_event = threading.Event()
        self.done = False

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def progress(self, value) -> None:
        """Called from the worker thread. Goes through the runner's queued signal, like the result:
        a value reported before the caller connected `progressed` still reaches it."""
        self._runner._send((self, "progress", value))


class Context:
    """What `work` gets: the thread's workspace, the task, and (for server work) the transport."""

    def __init__(self, workspace: Workspace, task: Task, transport=None):
        self.workspace = workspace
        self.task = task
        self.transport = transport

    def drive(self, gen):
        """Run a progress generator to its end, reporting each value; returns its result."""
        while True:
            try:
                value = next(gen)
            except StopIteration as stop:
                return stop.value
            self.task.progress(value)


class _ServerWorker(threading.Thread):
    def __init__(self, runner: "TaskRunner", server: str):
        super().__init__(name=f"berth-{server}", daemon=True)
        self.runner = runner
        self.server = server
        self.jobs: queue.Queue = queue.Queue()
        self.transport = None
        self.accept: str | None = None

    def run(self):
        workspace = self.runner.workspace_factory()
        while (job := self.jobs.get()) is not None:
            task, work = job
            try:
                transport = self._transport(workspace)
                result = work(Context(workspace, task, transport))
            except BaseException as e:  # handed to the GUI thread
                if is_connection_error(e):
                    self._drop()
                self.runner._finish(task, error=e)
            else:
                self.runner._finish(task, result=result)
        self._drop()

    def _transport(self, workspace: Workspace):
        if self.transport is not None:
            return self.transport
        self.runner._send_signal("server_state", self.server, CONNECTING, "")
        try:
            self.transport = workspace.connect(self.server, self.accept, shared=True)
        except (UnknownHostKey, HostKeyChanged) as e:
            self.runner._send_signal("server_state", self.server, HOST_KEY, str(e))
            self.runner._send_signal("host_key_problem", self.server, e)
            raise
        except (RemoteError, OSError) as e:
            self.runner._send_signal("server_state", self.server, UNREACHABLE, str(e))
            raise
        self.accept = None
        self.runner._send_signal("server_state", self.server, CONNECTED, "")
        return self.transport

    def _drop(self):
        if self.transport is not None:
            try:
                self.transport.close()
            except Exception:
                pass
            self.transport = None


class TaskRunner(QObject):
    """Signals:
        server_state(str server, str state, str detail): state is one of CONNECTING, CONNECTED,
            UNREACHABLE, HOST_KEY (unknown or changed host key: detail says which)
        host_key_problem(str server, object error): UnknownHostKey or HostKeyChanged; the main
            window asks the operator (the task that met it fails as well)
    """

    server_state = Signal(str, str, str)
    host_key_problem = Signal(str, object)
    _deliver = Signal(object)

    def __init__(self, workspace_factory: Callable[[], Workspace] = Workspace):
        super().__init__()
        self.workspace_factory = workspace_factory
        self.workers: dict[str, _ServerWorker] = {}
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="berth-bg")
        self._local = threading.local()
        self.active: set[Task] = set()
        self.closed = False  # after shutdown(): new work is not run, late answers are dropped
        self._deliver.connect(self._on_deliver, Qt.ConnectionType.QueuedConnection)

    def on_server(self, server: str, label: str, work: Callable[[Context], object],
                  owner: QObject | None = None) -> Task:
        """Queue `work(ctx)` on the server's own thread; ctx.transport is connected (reused)."""
        task = Task(label, self, owner)
        if self.closed:
            return task
        self.active.add(task)
        worker = self.workers.get(server)
        if worker is None or not worker.is_alive():
            worker = self.workers[server] = _ServerWorker(self, server)
            worker.start()
        worker.jobs.put((task, work))
        return task

    def in_background(self, label: str, work: Callable[[Context], object],
                      owner: QObject | None = None) -> Task:
        """Run `work(ctx)` on the shared pool (no server); ctx.workspace is the thread's own."""
        task = Task(label, self, owner)
        if self.closed:
            return task
        self.active.add(task)

        def run():
            ws = getattr(self._local, "workspace", None)
            if ws is None:
                ws = self._local.workspace = self.workspace_factory()
            try:
                result = work(Context(ws, task))
            except BaseException as e:
                self._finish(task, error=e)
            else:
                self._finish(task, result=result)

        self.pool.submit(run)
        return task

    def trust_host_key(self, server: str, fingerprint: str) -> None:
        """The next connection to `server` trusts this exact (unknown) fingerprint."""
        if self.closed:
            return
        worker = self.workers.get(server)
        if worker is None or not worker.is_alive():
            worker = self.workers[server] = _ServerWorker(self, server)
            worker.start()
        worker.accept = fingerprint

    def disconnect(self, server: str) -> None:
        """Forget the server's worker and connection (server edited or removed)."""
        worker = self.workers.pop(server, None)
        if worker is not None:
            worker.jobs.put(None)

    def shutdown(self, wait: bool = True) -> None:
        self.closed = True
        for task in list(self.active):
            task.cancel()
        self.active.clear()  # nothing will be delivered any more
        for worker in self.workers.values():
            worker.jobs.put(None)
        if wait:
            for worker in self.workers.values():
                worker.join(timeout=5)
        self.workers.clear()
        self.pool.shutdown(wait=wait, cancel_futures=True)

    # -- back on the GUI thread ---------------------------------------------------------------
    def _finish(self, task: Task, result=None, error: BaseException | None = None) -> None:
        if error is not None:
            error.trace = "".join(traceback.format_exception(error))
        self._send((task, "result", (result, error)))

    def _send(self, item) -> None:
        """From a worker thread. Once the window (and this runner) is gone, there is nobody to tell."""
        if not self.closed:
            try:
                self._deliver.emit(item)
            except RuntimeError:  # the runner's C++ object was deleted meanwhile
                pass

    def _send_signal(self, name: str, *args) -> None:
        if not self.closed:
            try:
                getattr(self, name).emit(*args)
            except RuntimeError:
                pass

    def _on_deliver(self, item) -> None:
        task, kind, value = item
        if self.closed:
            self.active.discard(task)
            return
        if task.owner is not None and not isValid(task.owner):  # the window that asked is closed
            self.active.discard(task)
            return
        if kind == "progress":
            if not task.done:
                task.progressed.emit(value)
            return
        result, error = value
        task.done = True
        self.active.discard(task)
        if error is not None:
            task.failed.emit(error)
        else:
            task.finished.emit(result)
