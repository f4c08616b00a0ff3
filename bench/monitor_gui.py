#!/usr/bin/env python3
"""Monitor GUI bench: 20 servers x 4 models streaming simulated samples at 1 Hz into the real
MonitorFeed (queued signal from a producer thread, ring buffer, History writer thread) and the real
Monitor page (fleet overview, then a model's graphs). Measures the GUI thread's work per tick, the
longest repaint, and RSS from the start to the equivalent of 1 hour of data.

    .venv/bin/python bench/monitor_gui.py [--servers 20] [--models 4] [--steady 20] [--hour 3600]

Phases: (1) steady, real time: `--steady` ticks at 1 Hz with the overview shown, then as many with a
model's graphs shown (what an operator sees; the writer thread works at its real pace); (2) fill,
accelerated: the rest of the hour as fast as the GUI thread takes it (one tick = one sample from
every server, then the view's 1 s refresh and a synchronous repaint), RSS read every 10 simulated
minutes; (3) steady again after the hour. A tick's GUI work = delivering its samples (the queued
slots: buffer + signals) + the view's refresh + repaint(). Busy % = that work per wall second at
1 Hz; "paint" is repaint() plus the posted updates it leaves (pyqtgraph paints its scene on one),
processed until none is left. Every paint event of every widget is also timed on its own (through
QApplication.notify): "max event" is the longest single one in the tick, wherever it happened (a
paint left over to the next tick's delivery included). See bench/README.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

GOAL_REPAINT_MS = 16.0
GOAL_BUSY_PCT = 10.0  # our own goal for the steady state: the GUI stays responsive with room to spare


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PaintLog:
    """Every QEvent.Paint delivered, timed: [(ms, widget class)] since the last take()."""

    def __init__(self):
        self.events: list[tuple[float, str]] = []

    def take(self) -> list[tuple[float, str]]:
        out, self.events = self.events, []
        return out


def timed_app(argv, log: PaintLog):
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    paint = QEvent.Type.Paint

    class TimedApp(QApplication):
        def notify(self, receiver, event):
            if event.type() != paint:
                return super().notify(receiver, event)
            t0 = time.perf_counter()
            try:
                return super().notify(receiver, event)
            finally:
                name = type(receiver).__name__
                if name == "QWidget" and receiver.parent() is not None:  # a scroll area's viewport
                    name = type(receiver.parent()).__name__ + ".viewport"
                log.events.append(((time.perf_counter() - t0) * 1000, name))

    return TimedApp(argv)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", type=int, default=20)
    p.add_argument("--models", type=int, default=4)
    p.add_argument("--steady", type=int, default=20, help="real-time ticks per view in each steady phase")
    p.add_argument("--hour", type=int, default=3600, help="simulated seconds of the fill phase")
    return p.parse_args(argv)


class Producer(threading.Thread):
    """Stands in for the SampleStream threads: on each `go`, one sample per server via feed.feed()."""

    def __init__(self, feed, servers, models, start_ts):
        super().__init__(name="bench-producer", daemon=True)
        from app.ui.monitor_buffer import simulated_sample

        self.make = simulated_sample
        self.feed, self.servers, self.models = feed, servers, models
        self.ts = start_ts
        self.go = threading.Event()
        self.done = threading.Event()
        self.stop = False

    def run(self):
        while True:
            self.go.wait()
            self.go.clear()
            if self.stop:
                return
            for i, server in enumerate(self.servers):
                self.feed.feed(server, self.make(self.ts, models=self.models, seed=i))
            self.ts += 1.0
            self.done.set()


def main(argv=None) -> int:
    args = parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="berth-monitor-bench-"))
    os.environ["BERTH_HOME"] = str(home)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    paints = PaintLog()
    app = timed_app(sys.argv[:1], paints)
    app.setOrganizationName("Berth-bench")
    from app.ui.monitor_feed import MonitorFeed, default_history
    from app.ui.monitor_view import MonitorPage
    from app.ui.tasks import TaskRunner
    from app.ui.theme import apply_theme

    apply_theme(app)
    servers = [f"srv{i:02d}" for i in range(args.servers)]
    models = tuple(f"model{j}" for j in range(args.models))
    runner = TaskRunner()
    feed = MonitorFeed(stream_factory=None, history_factory=default_history)
    feed.start(servers)
    page = MonitorPage(runner, feed)
    page.resize(1280, 800)
    page.show()
    page.show_overview()
    for w in (page.overview, page.graphs):  # the bench drives the 1 s refresh itself, timed
        w.timer.stop()
    app.processEvents()
    rss0 = rss()

    producer = Producer(feed, servers + ["local"], models, time.time())
    producer.start()
    ticks: list[dict] = []

    def tick(view: str) -> dict:
        producer.done.clear()
        producer.go.set()
        producer.done.wait()  # the samples are queued for the GUI thread now
        paints.take()
        t0 = time.perf_counter()
        app.processEvents()  # the queued slots: buffer.add + sampled for every sample
        t1 = time.perf_counter()
        if view == "overview":
            page.overview.refresh()
        else:
            page.graphs.redraw()
        t2 = time.perf_counter()
        page.repaint()
        for _ in range(5):  # pyqtgraph paints its scene on a posted update: count those paints here too, until
            n = len(paints.events)  # a pass paints nothing more
            app.sendPostedEvents()
            app.processEvents()
            if len(paints.events) == n:
                break
        t3 = time.perf_counter()
        events = paints.take()
        worst = max(events, default=(0.0, ""))
        row = {"view": view, "deliver": (t1 - t0) * 1000, "refresh": (t2 - t1) * 1000,
               "paint": (t3 - t2) * 1000, "busy": (t3 - t0) * 1000, "event": worst[0], "event_widget": worst[1],
               "events": len(events)}
        ticks.append(row)
        return row

    def steady(label: str) -> list[dict]:
        out = []
        for view in ("overview", "graphs"):
            if view == "overview":
                page.show_overview()
            else:
                page.show_target(servers[0], models[0])
            page.overview.timer.stop()
            page.graphs.timer.stop()
            for i in range(args.steady):
                start = time.monotonic()
                out.append(dict(tick(view), phase=label, first=i == 0))  # first: the view was just switched to
                time.sleep(max(0.0, 1.0 - (time.monotonic() - start)))
        return out

    print(f"monitor GUI bench: {args.servers} servers x {args.models} models (+ local), 1 sample/s each; "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} cores")
    first = steady("steady, start")
    rss_start = rss()
    marks = [(0, rss_start)]
    page.show_overview()
    page.overview.timer.stop()
    done = args.steady * 2
    fill_t0 = time.perf_counter()
    while done < args.hour:
        view = "overview" if (done // 300) % 2 == 0 else "graphs"  # 5 simulated minutes of each, alternating
        if view == "graphs" and page.stack.currentWidget() is not page.graphs:
            page.show_target(servers[done % len(servers)], models[0])
            page.graphs.timer.stop()
        elif view == "overview" and page.stack.currentWidget() is not page.overview:
            page.show_overview()
            page.overview.timer.stop()
        tick(view)
        done += 1
        if done % 600 == 0:
            marks.append((done, rss()))
    fill_s = time.perf_counter() - fill_t0
    behind = feed._queue.qsize()
    last = steady("steady, after 1 h")
    rss_end = rss()
    marks.append((done + args.steady * 2, rss_end))

    producer.stop = True
    producer.go.set()
    feed.stop()
    feed.writer_done.wait(60)
    runner.shutdown(wait=True)

    # sparklines: painted by the delegate (what the overview does) vs one small PlotWidget per cell
    spark = sparkline_compare(app, feed.buffer, servers[0], models)

    def summary(rows, view):
        sel = [r for r in rows if r["view"] == view]
        if not sel:
            return None
        worst = max(sel, key=lambda r: r["event"])
        return {k: statistics.median(r[k] for r in sel) for k in ("deliver", "refresh", "paint", "busy")} | \
            {"max_paint": max(r["paint"] for r in sel), "max_busy": max(r["busy"] for r in sel),
             "max_event": worst["event"], "max_event_widget": worst["event_widget"],
             "max_block": max(r["refresh"] + r["paint"] for r in sel)}

    print()
    print(f"{'phase / view':32} {'deliver':>8} {'refresh':>8} {'paint':>8} {'busy':>8} {'max paint':>10} "
          f"{'busy %':>7} {'max event':>10} {'max refresh+paint':>18}   (medians, then maxima; ms per 1 s tick)")
    for label, rows in (("steady, start", first), ("steady, after 1 h", last)):
        for view in ("overview", "graphs"):
            s = summary(rows, view)
            print(f"{label + ' / ' + view:32} {s['deliver']:8.2f} {s['refresh']:8.2f} {s['paint']:8.2f} "
                  f"{s['busy']:8.2f} {s['max_paint']:10.2f} {s['busy'] / 10:6.2f}% {s['max_event']:10.2f} "
                  f"{s['max_block']:18.2f}  (longest event: {s['max_event_widget']})")
    fill = ticks[len(first):len(ticks) - len(last)]
    for view in ("overview", "graphs"):
        s = summary([dict(r, phase="fill") for r in fill], view)
        if s is None:
            continue
        print(f"{'fill (accelerated) / ' + view:32} {s['deliver']:8.2f} {s['refresh']:8.2f} {s['paint']:8.2f} "
              f"{s['busy']:8.2f} {s['max_paint']:10.2f}")
    print(f"fill: {len(fill)} simulated seconds in {fill_s:.1f} s wall ({len(fill) / fill_s:.0f}x real time); "
          f"writer queue at the end of the fill: {behind} samples behind")
    steady_rows = first + last
    worst_paint = max(r["paint"] for r in steady_rows)
    worst_event = max(steady_rows, key=lambda r: r["event"])
    streaming = [r for r in steady_rows if not r["first"]]  # without the first tick after a view switch
    worst_streaming = max(streaming, key=lambda r: r["paint"])
    worst_streaming_event = max(streaming, key=lambda r: r["event"])
    switch = [r for r in steady_rows if r["first"]]
    p99_paint = sorted(r["paint"] for r in ticks)[int(len(ticks) * 0.99)]
    busy = statistics.mean(r["busy"] for r in steady_rows) / 10
    print()
    print("RSS (MB) by simulated minute: " + ", ".join(f"{t // 60}: {m / 2**20:.1f}" for t, m in marks))
    print(f"RSS before any sample {rss0 / 2**20:.1f} MB; ring buffer {feed.buffer.nbytes() / 2**20:.1f} MB "
          f"(preallocated, {len(feed.buffer.rings)} rings x {feed.buffer.capacity} points)")
    growth = rss_end - rss_start
    print(f"sparklines, {spark['cells']} cells: overview refresh + paint {spark['delegate']:.1f} ms, "
          f"PlotWidgets update+paint {spark['plots']:.1f} ms ({spark['plots'] / spark['delegate']:.1f}x), "
          f"PlotWidgets create {spark['plots_create']:.0f} ms")
    print()
    print("```")
    print(f"GUI busy (steady, mean)   {busy:6.2f} %   goal < {GOAL_BUSY_PCT:.0f} %  ratio {busy / GOAL_BUSY_PCT:.2f}")
    print(f"longest repaint (steady)  {worst_paint:6.1f} ms  goal < {GOAL_REPAINT_MS:.0f} ms  ratio "
          f"{worst_paint / GOAL_REPAINT_MS:.2f}")
    print(f"longest paint event       {worst_event['event']:6.1f} ms  (one widget's, steady: "
          f"{worst_event['event_widget']}, {worst_event['view']})")
    print(f"  without the first tick after a view switch: repaint {worst_streaming['paint']:.1f} ms "
          f"({worst_streaming['view']}), paint event {worst_streaming_event['event']:.1f} ms; first ticks: repaint "
          + ", ".join(f"{r['view']} {r['paint']:.1f}" for r in switch) + " ms")
    print(f"longest repaint (all)     {max(r['paint'] for r in ticks):6.1f} ms  (p99 {p99_paint:.1f} ms, "
          f"{len(ticks)} ticks)")
    print(f"RSS start -> after 1 h    {rss_start / 2**20:6.1f} -> {rss_end / 2**20:.1f} MB  "
          f"({growth / 2**20:+.1f} MB, {rss_end / rss_start:.3f}x)  goal: flat")
    print("```")
    shutil.rmtree(home, ignore_errors=True)
    return 0


def sparkline_compare(app, buffer, server, models) -> dict:
    """Paint the same sparklines two ways, offscreen, and time it."""
    import pyqtgraph as pg
    from PySide6.QtWidgets import QGridLayout, QWidget

    from app.ui.fleet_overview import FleetOverview

    class F:  # the overview only needs a buffer and a stream list
        pass

    f = F()
    f.buffer, f.streams = buffer, {}
    f.sampled = None
    ov = FleetOverview(f)
    ov.resize(1280, 800)
    ov.show()
    ov.timer.stop()
    ov.refresh()
    app.processEvents()
    cells = sum(1 for r in range(ov.model.rowCount()) if ov.table.rowViewportPosition(r) < 800) * 5
    reps = 10
    t0 = time.perf_counter()
    for _ in range(reps):
        ov.refresh()
        ov.table.viewport().repaint()
        app.processEvents()
    delegate = (time.perf_counter() - t0) * 1000 / reps

    grid = QWidget()
    layout = QGridLayout(grid)
    t0 = time.perf_counter()
    curves = []
    for i in range(cells):
        w = pg.PlotWidget()
        w.setFixedSize(90, 22)
        w.hideAxis("left")
        w.hideAxis("bottom")
        w.setMouseEnabled(False, False)
        curves.append(w.plot([], [], connect="finite"))
        layout.addWidget(w, i // 5, i % 5)
    grid.resize(1280, 800)
    grid.show()
    app.processEvents()
    create = (time.perf_counter() - t0) * 1000
    series = [buffer.series(server, models[i % len(models)], "cpu_percent") for i in range(cells)]
    t0 = time.perf_counter()
    for _ in range(reps):
        for c, (ts, vs) in zip(curves, series):
            c.setData(ts[-300:], vs[-300:], connect="finite")
        grid.repaint()
        app.processEvents()
    plots = (time.perf_counter() - t0) * 1000 / reps
    grid.close()
    ov.close()
    return {"cells": cells, "delegate": delegate, "plots": plots, "plots_create": create}


if __name__ == "__main__":
    sys.exit(main())
