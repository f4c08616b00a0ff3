#!/usr/bin/env python3
"""GUI start-up bench: time from process start to the main window's first paint, and memory (RSS)
at that moment, next to a bare QApplication + empty QMainWindow measured in the same run.

    .venv/bin/python bench/gui_start.py [--repeat N] [--warmup N] [-v]

Every measurement is a fresh `python -c` child (QT_QPA_PLATFORM=offscreen, its own empty
$BERTH_HOME); reference and Berth runs alternate. See bench/README.md for what each figure means.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _kit import source_state  # noqa: E402

# The child. argv[1] is "berth" or "ref"; BERTH_BENCH_T0 is the parent's time.time() just before spawning.
# It prints one line, "BENCH {json}", with wall-clock marks (time.time()) and RSS, then exits at once
# (os._exit: no close event, so nothing is saved to the temp BERTH_HOME and no thread is waited for).
CHILD = r'''
import os, sys, time
marks = {"code": time.time()}
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
kind = sys.argv[1]
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
if kind == "berth":
    from app.ui.app import run_gui
    from app.ui.main_window import MainWindow as Window
else:
    Window = QMainWindow
marks["imports"] = time.time()
app = QApplication(sys.argv[:1])  # run_gui() reuses QApplication.instance()
marks["qapp"] = time.time()

def done():
    marks["frame"] = time.time()
    print("BENCH " + __import__("json").dumps({"t0": float(os.environ["BERTH_BENCH_T0"]), "marks": marks,
                                               "rss": marks.pop("rss")}), flush=True)
    os._exit(0)

class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and "paint" not in marks:
            marks["paint"] = time.time()
            marks["rss"] = rss()
            QTimer.singleShot(0, done)  # runs once this paint pass (the children too) is over
        return False

first_paint = FirstPaint()
show = Window.show
def show_and_watch(self):  # the window's own Paint event comes first in its first paint pass
    marks["show"] = time.time()
    self.installEventFilter(first_paint)
    show(self)
Window.show = show_and_watch
QTimer.singleShot(60000, lambda: os._exit(3))  # never hang the bench
if kind == "berth":
    run_gui()  # exactly what `berth` does: app name, MainWindow(), show(), exec()
else:
    w = QMainWindow()
    w.resize(1280, 800)  # MainWindow's default size on a fresh BERTH_HOME
    w.show()
    app.exec()
'''

PHASES = [  # (row, from mark, to mark)
    ("interpreter start", "t0", "code"),
    ("imports", "code", "imports"),
    ("QApplication()", "imports", "qapp"),
    ("build window", "qapp", "show"),
    ("show -> first paint", "show", "paint"),
    ("FIRST PAINT (total)", "t0", "paint"),
    ("first frame done", "t0", "frame"),
]
KINDS = {"ref": "bare QMainWindow", "berth": "Berth MainWindow"}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=5, help="measured runs of each (default 5); medians are reported")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured runs of each first (default 1)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = p.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0:
        p.error("--repeat must be at least 1 and --warmup at least 0")
    return args


def child_env(home: Path) -> dict:
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "BERTH_THEME"):
        env.pop(var, None)
    env.update(QT_QPA_PLATFORM="offscreen", BERTH_HOME=str(home))
    return env


def run_once(kind: str) -> dict:
    home = Path(tempfile.mkdtemp(prefix="berth-gui-bench-"))
    try:
        env = child_env(home)
        env["BERTH_BENCH_T0"] = repr(time.time())
        proc = subprocess.run([sys.executable, "-c", CHILD, kind], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{kind} child failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(line[6:])
    marks = dict(data["marks"], t0=data["t0"])
    out = {row: marks[b] - marks[a] for row, a, b in PHASES}
    out["rss"] = data["rss"]
    return out


def fmt_ms(v: float) -> str:
    return f"{v * 1000:8.0f}"


def fmt_mb(v: float) -> str:
    return f"{v / 2**20:8.1f}"


def ratio(a: float, b: float) -> str:
    return f"{a / b:6.2f}x" if b > 0 else "     -"


def table(results: dict, n: int) -> list[str]:
    head = f"{'':26} {'':18} {'median':>8} {'min':>8} {'max':>8}   ratio (Berth/ref medians)"
    lines = [head, "-" * len(head)]
    rows = [(row, fmt_ms, "ms") for row, _, _ in PHASES] + [("RSS at first paint", fmt_mb, "MB")]
    for row, fmt, unit in rows:
        key = "rss" if unit == "MB" else row
        meds = {}
        for kind in ("ref", "berth"):
            vals = [r[key] for r in results[kind]]
            meds[kind] = statistics.median(vals)
            label = f"{row} ({unit})" if kind == "ref" else ""
            rat = ratio(meds["berth"], meds["ref"]) if kind == "berth" else ""
            lines.append(f"{label:26} {KINDS[kind]:18} {fmt(meds[kind])} {fmt(min(vals))} {fmt(max(vals))}   {rat}")
    lines.append(f"(n = {n} runs each; ms = milliseconds of wall clock from the parent's spawn time)")
    return lines


def summary(results: dict, args) -> list[str]:
    import PySide6
    from PySide6 import QtCore


    def med(kind, key):
        return statistics.median(r[key] for r in results[kind])

    t_ref, t_b = med("ref", "FIRST PAINT (total)"), med("berth", "FIRST PAINT (total)")
    m_ref, m_b = med("ref", "rss"), med("berth", "rss")
    return ["```",
            f"Berth GUI start bench (bench/gui_start.py --repeat {args.repeat}): {source_state()}, "
            f"{os.cpu_count()} cores, {platform.system()} {platform.release()}",
            f"python {platform.python_version()}, PySide6 {PySide6.__version__}, Qt {QtCore.qVersion()}, "
            "QT_QPA_PLATFORM=offscreen",
            f"first paint: Berth {t_b * 1000:.0f} ms, bare QMainWindow {t_ref * 1000:.0f} ms -> {t_b / t_ref:.2f}x "
            f"(+{(t_b - t_ref) * 1000:.0f} ms)",
            f"  of which imports +{(med('berth', 'imports') - med('ref', 'imports')) * 1000:.0f} ms, "
            f"build window +{(med('berth', 'build window') - med('ref', 'build window')) * 1000:.0f} ms, "
            f"show -> paint +{(med('berth', 'show -> first paint') - med('ref', 'show -> first paint')) * 1000:.0f} ms",
            f"RSS at first paint: Berth {m_b / 2**20:.1f} MB, bare {m_ref / 2**20:.1f} MB -> {m_b / m_ref:.2f}x "
            f"(+{(m_b - m_ref) / 2**20:.1f} MB)",
            "```"]


def main(argv=None) -> int:
    args = parse_args(argv)
    print(f"GUI start bench: {args.warmup} warm-up + {args.repeat} measured runs each of "
          f"{' and '.join(KINDS.values())}, alternating; python {sys.executable}", flush=True)
    results = {"ref": [], "berth": []}
    try:
        for i in range(args.warmup + args.repeat):
            for kind in ("ref", "berth"):
                r = run_once(kind)
                measured = i >= args.warmup
                if measured:
                    results[kind].append(r)
                if args.verbose:
                    print(f"  {'run' if measured else 'warm-up'} {i + 1} {kind:5}: first paint "
                          f"{r['FIRST PAINT (total)'] * 1000:.0f} ms, RSS {r['rss'] / 2**20:.1f} MB", flush=True)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    print()
    print("\n".join(table(results, args.repeat)))
    print()
    print("\n".join(summary(results, args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
