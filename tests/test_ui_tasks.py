"""The bridge between worker threads and the GUI thread."""
import threading
import time

from app.remote.errors import UnknownHostKey


def test_server_work_runs_off_the_gui_thread_and_reports_back(qtbot, task_runner):
    gui = threading.get_ident()
    seen = {}

    def work(ctx):
        seen["thread"] = threading.get_ident()
        ctx.task.progress("half")
        return ctx.transport.hello()["python"]

    task = task_runner.on_server("local", "hello", work)
    got = []
    task.progressed.connect(lambda v: got.append(("progress", v, threading.get_ident())))
    task.finished.connect(lambda v: got.append(("finished", v, threading.get_ident())))
    qtbot.waitUntil(lambda: len(got) == 2, timeout=20000)
    assert seen["thread"] != gui
    assert [g[0] for g in got] == ["progress", "finished"] and got[0][1] == "half"
    assert got[1][1].count(".") == 2 and {g[2] for g in got} == {gui}  # delivered on the GUI thread


def test_progress_reported_before_the_caller_connects_is_not_lost(qtbot, task_runner):
    reported = threading.Event()

    def work(ctx):
        for step in range(3):
            ctx.task.progress(step)
        reported.set()
        return "ok"

    task = task_runner.in_background("early", work)
    assert reported.wait(10)  # every value was reported before anything below is connected
    got = []
    task.progressed.connect(got.append)
    with qtbot.waitSignal(task.finished, timeout=10000):
        pass
    assert got == [0, 1, 2]


def test_one_connection_per_server_is_reused(qtbot, task_runner):
    transports = []
    for _ in range(3):
        task = task_runner.on_server("local", "t", lambda ctx: transports.append(ctx.transport) or 1)
        with qtbot.waitSignal(task.finished, timeout=20000):
            pass
    assert len(transports) == 3 and transports[0] is transports[1] is transports[2]


def test_failures_arrive_with_their_trace(qtbot, task_runner):
    def work(ctx):
        raise ValueError("boom")

    task = task_runner.in_background("fail", work)
    with qtbot.waitSignal(task.failed, timeout=10000) as blocker:
        pass
    error = blocker.args[0]
    assert str(error) == "boom" and "ValueError" in error.trace


def test_unknown_host_key_is_reported_and_never_accepted(qtbot, task_runner, sshd):
    from app.store.servers import ServerConfig
    from app.workspace import Workspace

    ws = Workspace()
    ws.servers.save(ServerConfig(name="box", host=sshd.host, port=sshd.port, user=sshd.user,
                                 key_path=str(sshd.key_path), root=str(sshd.folder / "r")))
    problems, failures = [], []
    task_runner.host_key_problem.connect(lambda *args: problems.append(args))
    task = task_runner.on_server("box", "hello", lambda ctx: ctx.transport.hello())
    task.failed.connect(failures.append)
    qtbot.waitUntil(lambda: bool(problems and failures), timeout=20000)
    assert problems[0][0] == "box" and isinstance(problems[0][1], UnknownHostKey)
    assert problems[0][1].fingerprint == sshd.fingerprint and isinstance(failures[0], UnknownHostKey)
    task_runner.trust_host_key("box", sshd.fingerprint)
    task = task_runner.on_server("box", "hello", lambda ctx: ctx.transport.hello())
    with qtbot.waitSignal(task.finished, timeout=20000) as done:
        pass
    assert done.args[0]["root"].endswith("/r")


def test_an_answer_for_a_closed_window_is_dropped(qtbot, task_runner):
    from PySide6.QtWidgets import QWidget
    from shiboken6 import delete

    owner, go = QWidget(), threading.Event()
    task = task_runner.in_background("slow", lambda ctx: go.wait(10), owner=owner)
    got = []
    task.finished.connect(got.append)
    delete(owner)
    go.set()
    qtbot.waitUntil(lambda: not task_runner.active, timeout=10000)
    assert got == [] and not task.done


def test_after_shutdown_nothing_runs_and_late_answers_are_dropped(qtbot):
    from app.ui.tasks import TaskRunner

    runner = TaskRunner()
    go, ran = threading.Event(), []
    late = runner.in_background("late", lambda ctx: go.wait(10))
    got = []
    late.finished.connect(got.append)
    runner.shutdown(wait=False)
    go.set()
    after = runner.in_background("after", lambda ctx: ran.append(1))
    settled(runner)
    assert got == [] and ran == [] and not after.done and not runner.active


def settled(runner) -> None:
    """Instead of sleeping: wait until the pool's threads have ended (the late work returned, so
    whatever it sends is posted by now), then deliver every event posted to the GUI thread."""
    from PySide6.QtCore import QCoreApplication

    runner.pool.shutdown(wait=True)
    QCoreApplication.sendPostedEvents()


def test_twenty_servers_share_a_bounded_pool_and_each_keeps_its_order(qtbot):
    """One thread per server (and three with its stream) does not scale to a fleet: all servers'
    tasks run on SERVER_THREADS threads; a server's own tasks run one at a time, in order."""
    from app.ui.tasks import TaskRunner

    class Quick:  # a connection needing no server: the pool is under test here, not SSH
        def close(self):
            pass

    class Fake:
        def connect(self, server, accept=None, shared=False):
            return Quick()

    runner = TaskRunner(workspace_factory=Fake, server_threads=4)
    before = threading.active_count()
    lock, order, running, overlap = threading.Lock(), {}, {}, []
    peak = [0, 0]

    def work(server, i):
        def run(ctx):
            with lock:
                running[server] = running.get(server, 0) + 1
                overlap.append(running[server] > 1)
                peak[0] += 1
                peak[1] = max(peak[1], peak[0])
            time.sleep(0.01)
            with lock:
                order.setdefault(server, []).append(i)
                running[server] -= 1
                peak[0] -= 1
            return i
        return run

    tasks = [runner.on_server(f"s{n}", "t", work(f"s{n}", i)) for i in range(5) for n in range(20)]
    qtbot.waitUntil(lambda: all(t.done for t in tasks), timeout=20000)
    try:
        assert all(order[f"s{n}"] == list(range(5)) for n in range(20))
        assert not any(overlap)  # never two of one server's tasks at once
        assert len(runner.threads) == 4 and threading.active_count() - before <= 4
        assert peak[1] > 1  # different servers did run side by side
    finally:
        runner.shutdown(wait=True)


def test_abandon_gives_a_stuck_server_a_fresh_lane(qtbot):
    """A task that never answers holds one thread; the server's next tasks run on a fresh lane, on a
    thread that stands in for the stuck one (here the bound is one thread), which leaves the pool
    once its task ends at last."""
    from app.ui.tasks import TaskRunner

    closed, release = threading.Event(), threading.Event()

    class Conn:
        def close(self):
            closed.set()

    class Fake:
        def connect(self, server, accept=None, shared=False):
            return Conn()

    runner = TaskRunner(workspace_factory=Fake, server_threads=1)
    try:
        stuck = runner.on_server("box", "stuck", lambda ctx: release.wait(20) and "late")
        behind = runner.on_server("box", "behind", lambda ctx: "behind")
        qtbot.waitUntil(lambda: stuck.started_at is not None, timeout=5000)
        qtbot.wait(200)
        assert not behind.done  # queued behind the stuck one
        runner.abandon("box")
        fresh = runner.on_server("box", "fresh", lambda ctx: "fresh")
        qtbot.waitUntil(lambda: behind.done and fresh.done, timeout=10000)
        assert not stuck.done and closed.is_set()  # its connection was cut; it is still stuck
        assert len(runner.threads) == 2
        release.set()
        qtbot.waitUntil(lambda: stuck.done, timeout=10000)
        qtbot.waitUntil(lambda: len(runner.threads) == 1, timeout=5000)
        again = runner.on_server("box", "again", lambda ctx: "again")
        qtbot.waitUntil(lambda: again.done, timeout=5000)
        assert len(runner.threads) == 1
    finally:
        release.set()
        runner.shutdown(wait=True)


def test_every_task_ends_its_life_on_the_gui_thread(qtbot, task_runner):
    """A Task is a QObject of the GUI thread: if a worker dropped the last reference, shiboken would
    delete it there while the GUI thread may be delivering to it (a segfault seen once in CI). The
    GIL is made to switch every microsecond so the GUI thread often finishes with a task before the
    worker has let go of it."""
    import sys
    import weakref

    gui, died, n = threading.get_ident(), [], 1000
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for i in range(n):
            run = task_runner.on_server if i % 2 else (lambda _s, label, work: task_runner.in_background(label, work))
            task = run("local", f"t{i}", lambda ctx: ctx.task.progress(1) or 1)
            weakref.finalize(task, lambda: died.append(threading.get_ident()))
            del task
        qtbot.waitUntil(lambda: len(died) == n, timeout=30000)
    finally:
        sys.setswitchinterval(old)
    assert died.count(gui) == n, f"{n - died.count(gui)} of {n} tasks were deleted on a worker thread"
