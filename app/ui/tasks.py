"""Work off the GUI thread, results back on it.

Server work runs on ONE bounded pool of threads (SERVER_THREADS, not one thread per server: a
fleet of 100 servers must not mean 100 threads). Each server has a lane: its tasks run one after
another, in order, and reuse one connection, which the live sample stream shares
(app/remote/shared.py); different servers run side by side up to the bound. A task that hangs holds
one thread, not the console: `abandon` cuts its connection and gives the server a fresh lane. One
small pool for work that needs no server (bundle checks, database queries). Each thread has its own
Workspace (SQLite connections stay in the thread that opened them). Results, errors and progress
come back as Qt signals, delivered on the GUI thread; `work` never touches a widget.
"""
import collections
import queue
import threading
import time
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
# threads for all servers' work together; a server's own tasks never run two at a time
SERVER_THREADS = 8


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
        self.started_at: float | None = None  # time.monotonic() when a thread began it (None: queued)

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


class _Lane:
    """One server's queue: its tasks run one after another, in order, on any of the pool's threads,
    and reuse one connection (which the live sample stream shares: app/remote/shared.py)."""

    def __init__(self, server: str):
        self.server = server
        self.jobs: collections.deque = collections.deque()  # (task, work); None: close the connection
        self.running = False  # queued in the pool or being run: at most once at a time
        self.transport = None
        self.accept: str | None = None
        self.ended = False  # disconnected or abandoned: what it still says is no longer the server's state
        self.current: Task | None = None  # the task being run
        self.stuck = False  # abandoned while running a task: its thread leaves the pool when that ends


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
    _released = Signal(object)  # a worker thread let go of a task (its id: more than a C int holds)

    def __init__(self, workspace_factory: Callable[[], Workspace] = Workspace, server_threads: int = SERVER_THREADS):
        super().__init__()
        self.workspace_factory = workspace_factory
        self.server_threads = server_threads
        self.lanes: dict[str, _Lane] = {}
        self.threads: list[threading.Thread] = []  # the server pool's, started as needed, never more than the bound
        self._ready: queue.Queue = queue.Queue()  # lanes with a job to run; None: a thread ends
        self._idle = 0  # pool threads waiting for a lane and not yet promised one
        self._spare = 0  # threads allowed over the bound: one per stuck task, which still holds its own
        self._lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="berth-bg")
        self._local = threading.local()
        self.active: set[Task] = set()
        # id(task) -> task, until its worker let go of it (`_released`, taken on the GUI thread); with
        # `active` (until delivered) the last reference always ends on the GUI thread. A Task is a
        # QObject of the GUI thread: a worker that dropped the last reference would have shiboken
        # delete it there, while the GUI thread may be delivering to it (a segfault seen once in CI)
        self._held: dict[int, Task] = {}
        self.closed = False  # after shutdown(): new work is not run, late answers are dropped
        self._deliver.connect(self._on_deliver, Qt.ConnectionType.QueuedConnection)
        self._released.connect(self._let_go, Qt.ConnectionType.QueuedConnection)

    def on_server(self, server: str, label: str, work: Callable[[Context], object],
                  owner: QObject | None = None) -> Task:
        """Queue `work(ctx)` behind the server's earlier tasks; ctx.transport is connected (reused)."""
        task = Task(label, self, owner)
        if self.closed:
            return task
        self.active.add(task)
        self._held[id(task)] = task
        self._enqueue(self._lane(server), (task, work))
        return task

    def in_background(self, label: str, work: Callable[[Context], object],
                      owner: QObject | None = None) -> Task:
        """Run `work(ctx)` on the shared pool (no server); ctx.workspace is the thread's own."""
        task = Task(label, self, owner)
        if self.closed:
            return task
        self.active.add(task)
        tid = id(task)
        self._held[tid] = task

        def run():  # holds the task only in its frame (the pool keeps `run` after it returns)
            task = self._held[tid]
            try:
                result, error = work(Context(self._workspace(), task)), None
            except BaseException as e:
                result, error = None, e
            self._finish(task, result, error)
            del task, error  # the error's traceback holds this frame: no reference to the task stays in it
            self._send_signal("_released", tid)

        self.pool.submit(run)
        return task

    def trust_host_key(self, server: str, fingerprint: str) -> None:
        """The next connection to `server` trusts this exact (unknown) fingerprint."""
        if not self.closed:
            self._lane(server).accept = fingerprint

    def disconnect(self, server: str) -> None:
        """Forget the server's connection once its queued tasks are done (server edited or removed)."""
        with self._lock:
            lane = self.lanes.pop(server, None)
        if lane is not None:
            lane.ended = True
            self._enqueue(lane, None)

    def abandon(self, server: str) -> None:
        """The server's running task does not answer: cut its connection (for the sample stream too,
        which reconnects) and give the tasks queued behind it, and the next ones, a fresh lane. The
        stuck task ends when its connection's close reaches it; its answer still arrives, late."""
        with self._lock:
            lane = self.lanes.pop(server, None)
            if lane is None:
                return
            lane.ended = True
            if lane.current is not None and not lane.stuck:  # its thread is written off: a new one may start
                lane.stuck = True
                self._spare += 1
            waiting = [job for job in lane.jobs if job is not None]
            lane.jobs.clear()
            transport = lane.transport
        fresh = self._lane(server)
        fresh.accept = lane.accept
        for job in waiting:
            self._enqueue(fresh, job)
        if transport is not None:  # the real connection, not only this lane's share of it
            conn = getattr(transport, "transport", transport)
            threading.Thread(target=_close_quietly, args=(conn,), name=f"berth-abandon-{server}",
                             daemon=True).start()

    def shutdown(self, wait: bool = True) -> None:
        self.closed = True
        for task in list(self.active):
            task.cancel()
        self.active.clear()  # nothing will be delivered any more
        with self._lock:
            lanes, self.lanes = list(self.lanes.values()), {}
        for lane in lanes:
            lane.ended = True
            self._enqueue(lane, None)
        for _ in self.threads:
            self._ready.put(None)  # behind the lanes' last jobs: each closes its connection first
        if wait:
            for thread in self.threads:
                thread.join(timeout=5)
        self.pool.shutdown(wait=wait, cancel_futures=True)

    # -- the server pool -----------------------------------------------------------------------
    def _lane(self, server: str) -> _Lane:
        with self._lock:
            lane = self.lanes.get(server)
            if lane is None:
                lane = self.lanes[server] = _Lane(server)
            return lane

    def _enqueue(self, lane: _Lane, job) -> None:
        with self._lock:
            lane.jobs.append(job)
            if lane.running:
                return  # its thread takes it after the jobs before it
            lane.running = True
        self._schedule(lane)

    def _schedule(self, lane: _Lane) -> None:
        """Hand the lane to an idle pool thread, or to a new one while under the bound; otherwise it
        waits in the queue for the first thread that is done."""
        with self._lock:
            if self._idle > 0:
                self._idle -= 1
            elif len(self.threads) < self.server_threads + self._spare:
                thread = threading.Thread(target=self._serve, name=f"berth-server-{len(self.threads) + 1}",
                                          daemon=True)
                self.threads.append(thread)
                thread.start()
        self._ready.put(lane)

    def _serve(self) -> None:
        while True:
            lane = self._ready.get()
            if lane is None:
                return
            more = self._run_one(lane)
            while more and self.closed:  # after shutdown a lane is finished here (its last job lets go of
                more = self._run_one(lane)  # its connection), not queued behind the threads' ends
            if more:
                self._schedule(lane)
            with self._lock:
                if lane.stuck:  # its task ended at last; the pool has its full count without this thread
                    lane.stuck = False
                    self._spare -= 1
                    self.threads.remove(threading.current_thread())
                    return
                self._idle += 1

    def _run_one(self, lane: _Lane) -> bool:
        """The lane's next job; True when it has more (it then goes to the back of the queue, so one
        busy server does not keep a thread from the others)."""
        with self._lock:
            job = lane.jobs.popleft()
        if job is None:
            self._drop(lane)
        else:
            task, work = job
            job, tid = None, id(task)
            lane.current = task
            task.started_at = time.monotonic()
            try:
                workspace = self._workspace()
                transport = self._transport(lane, workspace)
                result = work(Context(workspace, task, transport))
            except BaseException as e:  # handed to the GUI thread
                if is_connection_error(e):
                    self._drop(lane)
                self._finish(task, error=e)
            else:
                self._finish(task, result=result)
            lane.current = task = work = None  # the error's traceback holds this frame: let go of the task
            self._send_signal("_released", tid)
        with self._lock:
            more = bool(lane.jobs)
            if not more:
                lane.running = False
        if not more and lane.ended:  # disconnected or abandoned: nothing will use its share of the connection again
            self._drop(lane)
        return more

    def _workspace(self) -> Workspace:
        """The calling thread's own Workspace (its SQLite connection stays in this thread)."""
        ws = getattr(self._local, "workspace", None)
        if ws is None:
            ws = self._local.workspace = self.workspace_factory()
        return ws

    def _transport(self, lane: _Lane, workspace: Workspace):
        if lane.transport is not None:
            return lane.transport
        server = lane.server
        self._lane_signal(lane, "server_state", server, CONNECTING, "")
        try:
            lane.transport = workspace.connect(server, lane.accept, shared=True)
        except (UnknownHostKey, HostKeyChanged) as e:
            self._lane_signal(lane, "server_state", server, HOST_KEY, str(e))
            self._lane_signal(lane, "host_key_problem", server, e)
            raise
        except (RemoteError, OSError) as e:
            self._lane_signal(lane, "server_state", server, UNREACHABLE, str(e))
            raise
        lane.accept = None
        self._lane_signal(lane, "server_state", server, CONNECTED, "")
        return lane.transport

    def _lane_signal(self, lane: _Lane, name: str, *args) -> None:
        if not lane.ended:  # an abandoned lane's late "unreachable" is not news about the server
            self._send_signal(name, *args)

    def _drop(self, lane: _Lane) -> None:
        transport, lane.transport = lane.transport, None
        if transport is not None:
            _close_quietly(transport)

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

    def _let_go(self, tid: int) -> None:
        """A worker let go of a task: the runner's reference ends here, on the GUI thread."""
        self._held.pop(tid, None)

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


def _close_quietly(transport) -> None:
    try:
        transport.close()
    except Exception:  # noqa: BLE001 - already broken
        pass
