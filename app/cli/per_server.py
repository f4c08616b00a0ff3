"""Running one piece of work on several servers, several at once: a server that fails is reported
and the others still run, unless the operator named that one server, whose failure is then the
command's. Results and failure lines come out in the order of the names, however the work finished."""
from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app.errors import BerthError, one_line

T = TypeVar("T")


@dataclass
class PerServer(Generic[T]):
    results: list[T] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def for_each_server(names: list[str], work: Callable[[str], T], named: bool, parallel: int = 1) -> PerServer[T]:
    """`work(name)` for each server, up to `parallel` at once (threads: give the work its thread's
    own workspace with `thread_workspaces`). A BerthError (RemoteError included) or OSError is one
    line on stderr (`berth: NAME: message`) and the other servers go on. `named`: the operator named
    the one server, so its failure is raised instead."""
    outcome: PerServer[T] = PerServer()
    if named or parallel <= 1 or len(names) <= 1:
        for name in names:
            _collect(outcome, name, lambda name=name: work(name), named)
        return outcome
    todo: queue.Queue = queue.Queue()
    for i, name in enumerate(names):
        todo.put((i, name))
    done = [_Done() for _ in names]
    stop = threading.Event()  # Ctrl-C: no server is started after it; those under way end by themselves

    def worker() -> None:
        try:
            while not stop.is_set():
                try:
                    i, name = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    done[i].value = work(name)
                except BaseException as e:  # handed to the main thread, which decides
                    done[i].error = e
                done[i].set()
        finally:
            for finish in reversed(getattr(_thread, "finish", ())):
                finish()

    threads = [threading.Thread(target=worker, name=f"berth-server-{n}", daemon=True)
               for n in range(min(parallel, len(names)))]
    try:
        for thread in threads:
            thread.start()
        for name, d in zip(names, done):  # in order: each shown as soon as those before it are
            d.wait()
            _collect(outcome, name, d.result, named)
    finally:
        stop.set()
    for thread in threads:
        thread.join()
    return outcome


class _Done(threading.Event):
    value = None
    error: BaseException | None = None

    def result(self):
        if self.error is not None:
            raise self.error
        return self.value


_thread = threading.local()  # `finish`: what a worker thread closes before it ends


def _collect(outcome: PerServer, name: str, result: Callable, named: bool) -> None:
    try:
        outcome.results.append(result())
    except (BerthError, OSError) as e:
        if named:
            raise
        outcome.failed.append(name)
        print(f"berth: {name}: {one_line(e)}", file=sys.stderr, flush=True)


def thread_workspaces(workspace) -> Callable[[], object]:
    """`own()` gives the calling thread's workspace: `workspace` itself in the thread that made it,
    a fresh one like it (same database file, its own SQLite connection) in any other, closed by
    that thread when for_each_server's worker ends (SQLite objects stay in their thread)."""
    home = threading.get_ident()
    local = threading.local()
    ask = _one_at_a_time(workspace.ask_passphrase) if workspace.ask_passphrase else None

    def own():
        if threading.get_ident() == home:
            return workspace
        ws = getattr(local, "workspace", None)
        if ws is None:
            ws = local.workspace = type(workspace)(ask_passphrase=ask,
                                                   anchor_later=getattr(workspace, "anchor_later", False))
            if not hasattr(_thread, "finish"):
                _thread.finish = []
            _thread.finish.append(ws.close)
        return ws

    return own


def _one_at_a_time(ask):
    """A terminal asks one passphrase at a time, whichever thread needs it."""
    passphrase_lock = threading.Lock()

    def asked(path: str):
        with passphrase_lock:
            return ask(path)

    return asked
