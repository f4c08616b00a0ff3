#!/usr/bin/env python3
"""Monitor GUI bench: 20 servers x 4 models streaming simulated samples at 1 Hz into the real
MonitorFeed (queued signal from a producer thread, ring buffer, History writer thread) and the real
Monitor page (fleet overview, then a model's graphs). Measures the GUI thread's work per tick, the
longest repaint and event, view switches, and RSS from the start to `--hours` hours of data.

    .venv/bin/python bench/monitor_gui.py [--servers 20] [--models 4] [--steady 20] [--hour 3600] [--hours 1]

Phases: (1) steady, real time: `--steady` ticks at 1 Hz with the overview shown, then as many with a
model's graphs shown (what an operator sees; the writer thread works at its real pace); (2) fill,
accelerated: the rest of the hours as fast as the GUI thread takes it, never more than 4 ticks ahead
of the writer (one tick = one sample from every server, then the view's 1 s refresh and a repaint),
RSS every 10 simulated minutes and after each hour; (3) steady again. A tick's GUI work = delivering
its samples + the view's refresh + what follows (repaint() and the posted events left, until none).
"paint" is the sum of the tick's paint events, each timed through QApplication.notify, which also
times every outermost event ("max event"). View switches are timed on their own. See bench/README.md.
"""
from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

GOAL_REPAINT_MS = 16.0
FILL_FIELDS = ("deliver", "refresh", "paint", "after", "busy", "event", "longest")
GOAL_BUSY_PCT = 10.0  # our own goal for the steady state: the GUI stays responsive with room to spare


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PaintLog:
    """Every QEvent.Paint delivered, timed: [(ms, widget class)] since the last take(); and every
    event of the GUI thread at the outermost level (a paint inside an UpdateRequest counts in it),
    timed: [(ms, kind)] in `outer`."""

    def __init__(self):
        self.events: list[tuple[float, str]] = []
        self.outer: list[tuple[float, str]] = []
        self.depth = 0

    def take(self) -> list[tuple[float, str]]:
        out, self.events = self.events, []
        return out

    def take_outer(self) -> list[tuple[float, str]]:
        out, self.outer = self.outer, []
        return out


def timed_app(argv, log: PaintLog):
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    paint = QEvent.Type.Paint

    class TimedApp(QApplication):
        def notify(self, receiver, event):
            kind = event.type()
            log.depth += 1
            t0 = time.perf_counter()
            try:
                return super().notify(receiver, event)
            finally:
                ms = (time.perf_counter() - t0) * 1000
                log.depth -= 1
                if kind == paint:
                    name = type(receiver).__name__
                    if name == "QWidget" and receiver.parent() is not None:  # a scroll area's viewport
                        name = type(receiver.parent()).__name__ + ".viewport"
                    log.events.append((ms, name))
                if log.depth == 0:
                    log.outer.append((ms, f"{kind.name} {type(receiver).__name__}"))

    return TimedApp(argv)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", type=int, default=20)
    p.add_argument("--models", type=int, default=4)
    p.add_argument("--steady", type=int, default=20, help="real-time ticks per view in each steady phase")
    p.add_argument("--hour", type=int, default=3600, help="simulated seconds of one hour of the fill phase")
    p.add_argument("--hours", type=int, default=1, help="simulated hours of the fill phase (RSS given after each)")
    return p.parse_args(argv)


class Producer(threading.Thread):
    """Stands in for the SampleStream threads: on each `go`, one sample per server via feed.feed()."""

    def __init__(self, feed, servers, models, start_ts, clock):
        super().__init__(name="bench-producer", daemon=True)
        from app.monitor.simulated import simulated_sample

        self.make = simulated_sample
        self.feed, self.servers, self.models = feed, servers, models
        self.ts = start_ts
        self.clock = clock
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
            self.clock[0] = self.ts
            self.done.set()


def main(argv=None) -> int:
    args = parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="berth-monitor-bench-"))
    os.environ["BERTH_HOME"] = str(home)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    paints = PaintLog()
    app = timed_app(sys.argv[:1], paints)
    app.setOrganizationName("Berth-bench")
    from app.ui.monitor.feed import MonitorFeed
    from app.ui.monitor.page import MonitorPage
    from app.ui.tasks import TaskRunner
    from app.ui.theme import apply_theme

    apply_theme(app)
    servers = [f"srv{i:02d}" for i in range(args.servers)]
    models = tuple(f"model{j}" for j in range(args.models))
    runner = TaskRunner()
    clock = [time.time()]  # the simulated time: History prunes by it, as it would at 1 Hz

    def history():
        from app.monitor.history import History

        return History(home / "monitor.sqlite", clock=lambda: clock[0])

    feed = MonitorFeed(stream_factory=None, history_factory=history)
    feed.start(servers)
    page = MonitorPage(runner, feed)
    page.resize(1280, 800)
    page.show()
    page.show_overview()
    for w in (page.overview, page.graphs):  # the bench drives the 1 s refresh itself, timed
        w.timer.stop()
    app.processEvents()
    rss0 = rss()

    producer = Producer(feed, servers + ["local"], models, clock[0], clock)
    producer.start()

    def tick(view: str) -> dict:
        producer.done.clear()
        producer.go.set()
        producer.done.wait()  # the samples are queued for the GUI thread now
        paints.take()
        paints.take_outer()
        t0 = time.perf_counter()
        app.processEvents()  # the queued slots: buffer.add + sampled for every sample
        t1 = time.perf_counter()
        if view == "overview":
            page.overview.refresh()
        else:
            page.graphs.redraw()
        t2 = time.perf_counter()
        page.repaint()
        for _ in range(30):  # what the refresh and repaint left: pyqtgraph paints its scene on a posted update,
            n = len(paints.outer)  # the overview draws its sheet a few rows per event; until a pass does nothing
            app.sendPostedEvents()
            app.processEvents()
            if len(paints.outer) == n:
                break
        t3 = time.perf_counter()
        events = paints.take()
        outer = paints.take_outer() + [((t2 - t1) * 1000, "refresh call")]  # a timer event in the app
        worst = max(events, default=(0.0, ""))
        longest = max(outer)
        row = {"view": view, "deliver": (t1 - t0) * 1000, "refresh": (t2 - t1) * 1000,
               "paint": sum(ms for ms, _w in events), "after": (t3 - t2) * 1000, "busy": (t3 - t0) * 1000,
               "event": worst[0], "event_widget": worst[1], "events": len(events),
               "longest": longest[0], "longest_kind": longest[1], "ts": producer.ts - 1}
        return row

    switches: list[dict] = []

    def switch(view: str, server: str) -> dict:
        """Switch the page to `view` and let it settle as the event loop would right after the click
        (its layout and first paint), timed on its own: the first tick after it is a usual one."""
        paints.take()
        paints.take_outer()
        t0 = time.perf_counter()
        if view == "overview":
            page.show_overview()
        else:
            page.show_target(server, models[0])
        page.overview.timer.stop()
        page.graphs.timer.stop()
        t1 = time.perf_counter()
        for _ in range(30):
            n = len(paints.outer)
            app.sendPostedEvents()
            app.processEvents()
            if len(paints.outer) == n:
                break
        events = paints.take()
        outer = paints.take_outer() + [((t1 - t0) * 1000, "switch call")]
        row = {"view": view, "wall": (time.perf_counter() - t0) * 1000, "call": (t1 - t0) * 1000,
               "paint": sum(ms for ms, _w in events), "event": max(events, default=(0.0, ""))[0],
               "longest": max(outer)[0], "longest_kind": max(outer)[1]}
        switches.append(row)
        return row

    def steady(label: str) -> list[dict]:
        out = []
        for view in ("overview", "graphs"):
            switch(view, servers[0])
            for i in range(args.steady):
                start = time.monotonic()
                out.append(dict(tick(view), phase=label, first=i == 0))  # first: the view was just switched to
                time.sleep(max(0.0, 1.0 - (time.monotonic() - start)))
        return out

    print(f"monitor GUI bench: {args.servers} servers x {args.models} models (+ local), 1 sample/s each; "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} cores")
    first = steady("steady, start")
    page.show_overview()
    page.overview.timer.stop()
    done = args.steady * 2
    fill_t0 = time.perf_counter()
    # the fill's ticks in a preallocated array, not 3,600 dicts an hour (~4 MB of the bench's own heap)
    fill_rows = np.full((max(0, args.hour * args.hours - done), len(FILL_FIELDS) + 1), np.nan)
    rss_start = rss()
    marks = [(0, rss_start)]
    hour_marks = [(0, rss_start, 0)]
    objects = [(len(gc.get_objects()), len(page.graphs.graphics.scene().items()))]  # Python objects, scene items
    while done < args.hour * args.hours:
        view = "overview" if (done // 300) % 2 == 0 else "graphs"  # 5 simulated minutes of each, alternating
        if view == "graphs" and page.stack.currentWidget() is not page.graphs:
            switch(view, servers[done % len(servers)])
        elif view == "overview" and page.stack.currentWidget() is not page.overview:
            switch(view, servers[0])
        row = tick(view)
        fill_rows[done - args.steady * 2] = [row[k] for k in FILL_FIELDS] + [view == "graphs"]
        done += 1
        while feed._queue.qsize() > 4 * len(servers):  # not faster than the writer: at 1 Hz it has 50x the time
            time.sleep(0.002)  # it needs, and a backlog of samples held in memory is not what this measures
        if done % 600 == 0:
            marks.append((done, rss()))
        if done % args.hour == 0:  # once the writer has caught up: its backlog (samples held) is not the point
            backlog = feed._queue.qsize()
            while feed._queue.qsize() and time.perf_counter() - fill_t0 < 3600:
                app.processEvents()
                time.sleep(0.05)
            hour_marks.append((done // args.hour, rss(), backlog))
            objects.append((len(gc.get_objects()), len(page.graphs.graphics.scene().items())))
    fill_s = time.perf_counter() - fill_t0
    behind = feed._queue.qsize()
    last = steady("steady, after the fill")
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
        longest = max(sel, key=lambda r: r["longest"])
        return {k: statistics.median(r[k] for r in sel) for k in ("deliver", "refresh", "paint", "after", "busy")} | \
            {"max_paint": max(r["paint"] for r in sel), "max_busy": max(r["busy"] for r in sel),
             "max_event": worst["event"], "max_event_widget": worst["event_widget"],
             "longest": longest["longest"], "longest_kind": longest["longest_kind"]}

    print()
    print(f"{'phase / view':32} {'deliver':>8} {'refresh':>8} {'paint':>8} {'after':>8} {'busy':>8} {'max paint':>10} "
          f"{'busy %':>7} {'max paint ev':>12} {'max event':>10}   (medians, then maxima; ms per 1 s tick)")
    for label, rows in (("steady, start", first), ("steady, after the fill", last)):
        for view in ("overview", "graphs"):
            s = summary(rows, view)
            print(f"{label + ' / ' + view:32} {s['deliver']:8.2f} {s['refresh']:8.2f} {s['paint']:8.2f} "
                  f"{s['after']:8.2f} {s['busy']:8.2f} {s['max_paint']:10.2f} {s['busy'] / 10:6.2f}% "
                  f"{s['max_event']:12.2f} {s['longest']:10.2f}  (longest paint: {s['max_event_widget']}; "
                  f"longest event: {s['longest_kind']})")
    fill = [dict(zip(FILL_FIELDS, r[:-1]), view="graphs" if r[-1] else "overview", event_widget="",
                 longest_kind="") for r in fill_rows if not np.isnan(r[0])]
    ticks = first + fill + last
    for view in ("overview", "graphs"):
        s = summary([dict(r, phase="fill") for r in fill], view)
        if s is None:
            continue
        print(f"{'fill (accelerated) / ' + view:32} {s['deliver']:8.2f} {s['refresh']:8.2f} {s['paint']:8.2f} "
              f"{s['after']:8.2f} {s['busy']:8.2f} {s['max_paint']:10.2f}")
    print(f"fill: {len(fill)} simulated seconds in {fill_s:.1f} s wall ({len(fill) / fill_s:.0f}x real time); "
          f"writer queue at the end of the fill: {behind} samples behind")
    steady_rows = first + last
    worst_paint = max(r["paint"] for r in steady_rows)
    worst_event = max(steady_rows, key=lambda r: r["event"])
    worst_any = max(steady_rows, key=lambda r: r["longest"])
    streaming = [r for r in steady_rows if not r["first"]]  # without the first tick after a view switch
    worst_streaming = max(streaming, key=lambda r: r["paint"])
    worst_streaming_event = max(streaming, key=lambda r: r["event"])
    worst_streaming_any = max(streaming, key=lambda r: r["longest"])
    switch = [r for r in steady_rows if r["first"]]
    p99_paint = sorted(r["paint"] for r in ticks)[int(len(ticks) * 0.99)]
    p99_steady = sorted(r["paint"] for r in steady_rows)[int(len(steady_rows) * 0.99)]
    busy = statistics.mean(r["busy"] for r in steady_rows) / 10
    print()
    print("RSS (MB) by simulated minute: " + ", ".join(f"{t // 60}: {m / 2**20:.1f}" for t, m in marks))
    print("RSS (MB) after each simulated hour, the writer caught up (its backlog then): " + ", ".join(
        f"{h} h: {m / 2**20:.1f} ({q})" for h, m, q in hour_marks))
    print("Python objects (gc) and graph scene items after each hour: " + ", ".join(
        f"{n} / {items}" for n, items in objects))
    print(f"RSS before any sample {rss0 / 2**20:.1f} MB; ring buffer {feed.buffer.nbytes() / 2**20:.1f} MB "
          f"({len(feed.buffer.rings)} rings of up to {feed.buffer.capacity} points)")
    growth = rss_end - rss_start
    print(f"sparklines, {spark['cells']} cells: overview refresh + paint {spark['delegate']:.1f} ms, "
          f"PlotWidgets update+paint {spark['plots']:.1f} ms ({spark['plots'] / spark['delegate']:.1f}x), "
          f"PlotWidgets create {spark['plots_create']:.0f} ms")
    print()
    print("```")
    print(f"GUI busy (steady, mean)   {busy:6.2f} %   goal < {GOAL_BUSY_PCT:.0f} %  ratio {busy / GOAL_BUSY_PCT:.2f}")
    print(f"longest repaint (steady)  {worst_paint:6.1f} ms  goal < {GOAL_REPAINT_MS:.0f} ms  ratio "
          f"{worst_paint / GOAL_REPAINT_MS:.2f}  (p99 {p99_steady:.1f} ms; repaint = the paint events of a tick)")
    print(f"longest paint event       {worst_event['event']:6.1f} ms  (one widget's, steady: "
          f"{worst_event['event_widget']}, {worst_event['view']})")
    print(f"longest GUI event         {worst_any['longest']:6.1f} ms  (any kind, steady: {worst_any['longest_kind']}, "
          f"{worst_any['view']})")
    print(f"  without the first tick after a view switch: repaint {worst_streaming['paint']:.1f} ms "
          f"({worst_streaming['view']}), paint event {worst_streaming_event['event']:.1f} ms, any event "
          f"{worst_streaming_any['longest']:.1f} ms ({worst_streaming_any['longest_kind']}); first ticks: repaint "
          + ", ".join(f"{r['view']} {r['paint']:.1f}" for r in switch) + " ms")
    print("view switches (call + settle: layout, first paint), ms: " + "; ".join(
        f"{r['view']} {r['wall']:.0f} (paint {r['paint']:.0f}, longest paint {r['event']:.0f}, longest event "
        f"{r['longest']:.0f})" for r in switches[:4] + switches[-4:]))
    steady_switch = switches[:2] + switches[-2:]
    print(f"  switches: longest paint event {max(r['event'] for r in switches):.1f} ms (steady ones "
          f"{max(r['event'] for r in steady_switch):.1f}), longest event {max(r['longest'] for r in switches):.1f} ms; "
          f"median wall {statistics.median(r['wall'] for r in switches):.1f} ms over {len(switches)}")
    slow = sorted(steady_rows, key=lambda r: -r["paint"])[:6]
    print("slowest steady ticks (repaint ms, view, second of the minute): " + ", ".join(
        f"{r['paint']:.1f} {r['view']} :{int(r['ts'] % 60):02d}" for r in slow))
    print(f"longest repaint (all)     {max(r['paint'] for r in ticks):6.1f} ms  (p99 {p99_paint:.1f} ms, "
          f"{len(ticks)} ticks)")
    print(f"RSS start -> after fill   {rss_start / 2**20:6.1f} -> {rss_end / 2**20:.1f} MB  "
          f"({growth / 2**20:+.1f} MB, {rss_end / rss_start:.3f}x)  goal: flat; by hour: " + ", ".join(
              f"{m / 2**20:.1f}" for _h, m, _q in hour_marks))
    print("```")
    shutil.rmtree(home, ignore_errors=True)
    return 0


def sparkline_compare(app, buffer, server, models) -> dict:
    """Paint the same sparklines two ways, offscreen, and time it."""
    import pyqtgraph as pg
    from PySide6.QtWidgets import QGridLayout, QWidget

    from app.ui.monitor.overview import FleetOverview

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
