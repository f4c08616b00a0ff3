"""The console under bench/fleet.py: `berth`'s own start (app.ui.app.run_gui) in this process, with
watchers on the main window's objects, so the bench can say which servers the console left hung.

    python bench/_fleet_console.py OUT.json SECONDS WINDOW SERVER...   (env: BERTH_HOME etc., offscreen)

From the window's first event-loop pass (t=0) it records, per named server, when the fleet tree
first showed a model under it (FleetModel.rowsInserted) and when its first monitor sample arrived
(MonitorFeed.sampled). At t=SECONDS-WINDOW: the hung servers (no models or no sample yet) and this
process's CPU times; at t=SECONDS: CPU % of a core over the window, RSS, threads, TCP connections,
the servers still hung, and the window's CPU split by thread kind (Linux: /proc/self/task; Python
threads named by `native_id`, a server's name stripped, so 100 paramiko threads are one line).
Writes OUT.json, closes the window as Quit would, and exits.
"""
from __future__ import annotations

import json
import os
import re
import sys
import threading
import time

import psutil
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far per thread kind: Python threads by name with numbers and a trailing
    "(target)" cut (`berth-server-fleet-12` -> `berth-server-fleet-*`, paramiko's `Thread-7 (run)` ->
    `Thread-*`), others by their comm (Qt's)."""
    if not os.path.isdir("/proc/self/task"):
        return {}
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                comm, rest = f.read().split(" (", 1)[1].rsplit(")", 1)
        except OSError:
            continue
        fields = rest.split()
        name = names.get(int(tid)) or comm
        kind = "GUI thread" if int(tid) == os.getpid() else re.sub(r"\d+", "*", re.sub(r" \(.*\)$", "", name))
        out[kind] = out.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def main(out: str, seconds: float, window_s: float, servers: list[str]) -> None:
    from app.ui.app import run_gui
    from app.ui.main_window import MainWindow
    from app.ui.servers.fleet import ROLE_SERVER

    app = QApplication(sys.argv[:1])  # run_gui() reuses QApplication.instance()
    me = psutil.Process()
    wanted = set(servers)
    t0 = [0.0]
    models_at: dict[str, float] = {}
    sample_at: dict[str, float] = {}
    result: dict = {"servers": len(servers)}
    mark: dict = {}

    def now() -> float:
        return time.monotonic() - t0[0]

    def hung() -> list[str]:
        return sorted(s for s in wanted if s not in models_at or s not in sample_at)

    def window():
        return next(w for w in app.topLevelWidgets() if isinstance(w, MainWindow))

    def on_rows(parent, _first, _last):
        server = parent.data(ROLE_SERVER) if parent.isValid() else None
        if server in wanted:
            models_at.setdefault(server, now())

    def on_sample(server, _sample):
        if server in wanted and server not in sample_at:
            sample_at[server] = now()

    def attach():
        t0[0] = time.monotonic()
        window().fleet_model.rowsInserted.connect(on_rows)
        feed_timer.start(100)
        QTimer.singleShot(int((seconds - window_s) * 1000), window_start)
        QTimer.singleShot(int(seconds * 1000), finish)

    def attach_feed():  # the feed is made by start_monitoring, queued by run_gui after the first paint
        feed = window().monitor_feed
        if feed is not None:
            feed.sampled.connect(on_sample)
            feed_timer.stop()

    def window_start():
        mark["cpu"], mark["t"] = sum(me.cpu_times()[:2]), time.monotonic()
        mark["threads"] = thread_cpu()
        result["hung_at_window"] = hung()

    def finish():
        cpu, t = sum(me.cpu_times()[:2]), time.monotonic()
        by_thread = thread_cpu()
        w = window()
        result.update(
            cpu_pct=100.0 * (cpu - mark["cpu"]) / (t - mark["t"]), rss=me.memory_info().rss,
            threads=me.num_threads(), tcp=len(me.net_connections(kind="tcp")),
            hung_at_end=hung(), window_s=window_s, seconds=seconds,
            thread_pct=dict(sorted(((k, round(100.0 * (v - mark["threads"].get(k, 0.0)) / (t - mark["t"]), 2))
                                    for k, v in by_thread.items()), key=lambda kv: -kv[1])),
            models_at=models_at, sample_at=sample_at,
            states={s: {"fleet": list(w.fleet_model.states.get(s, ("", ""))),
                        "stream": list(w.monitor_feed.states.get(s, ("", ""))) if w.monitor_feed else None}
                    for s in hung()})
        with open(out, "w") as f:
            json.dump(result, f)
        w.close()  # what Quit does: settings saved, streams stopped, the runner shut down (not waited for)
        QTimer.singleShot(500, lambda: os._exit(0))

    feed_timer = QTimer()
    feed_timer.timeout.connect(attach_feed)
    QTimer.singleShot(0, attach)
    QTimer.singleShot(int((seconds + 60) * 1000), lambda: os._exit(3))  # never hang the bench
    run_gui()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:])
