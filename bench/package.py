#!/usr/bin/env python3
"""The packaged app next to running from source: the package's size, then start-up times of both.

    .venv/bin/python bench/package.py [--dist dist/berth] [--repeat N]     (after `make package`)

Start-up, each a fresh process (the package with an empty environment, as `make package-test`):
`--version` (the command line: Python and the CLI imported), and `--self-test` read line by line:
the time from spawn to its "ok window" line (the window built and shown offscreen, the local server
in its fleet tree) and to its end. The first run of each is reported apart ("first": page cache not
yet warm for that tree, the nearest to a cold start without dropping the machine's caches), then
the median of the rest. Exit status 1 when a run failed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def folder_size(folder: Path) -> tuple[int, int]:
    total = count = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
                count += 1
    return total, count


def timed_version(argv, env) -> float:
    t0 = time.perf_counter()
    subprocess.run([*argv, "--version"], env=env, check=True, capture_output=True, timeout=120)
    return time.perf_counter() - t0


def timed_self_test(argv, env) -> tuple[float, float]:
    """(seconds to the "ok window" line, seconds to the end)."""
    with tempfile.TemporaryDirectory() as cwd:
        t0 = time.perf_counter()
        proc = subprocess.Popen([*argv, "--self-test"], env=env, cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        window, lines = None, []
        for line in proc.stdout:
            lines.append(line.rstrip())
            if window is None and line.startswith("  ok window"):
                window = time.perf_counter() - t0
        proc.stdout.close()
        if proc.wait(timeout=300) != 0 or window is None:
            raise RuntimeError(f"{argv[0]} --self-test failed (exit {proc.returncode}): " + " | ".join(lines[-2:]))
        return window, time.perf_counter() - t0


def measure(name, argv, env, repeat) -> dict:
    runs = [(timed_version(argv, env), *timed_self_test(argv, env)) for _ in range(repeat + 1)]
    first, rest = runs[0], runs[1:]
    row = {"how": name, "first_version_s": first[0], "first_window_s": first[1], "first_self_test_s": first[2]}
    for i, key in enumerate(("version_s", "window_s", "self_test_s")):
        row[key] = statistics.median(r[i] for r in rest)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist" / "berth")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    exe = args.dist / "berth"
    if not exe.is_file():
        print(f"bench: no {exe}: run `make package` first", file=sys.stderr)
        return 1
    size, files = folder_size(args.dist)
    tars = sorted(args.dist.parent.glob("berth-*-linux-x86_64.tar.gz"))
    print(f"package: {args.dist} {size / 2**20:.0f} MiB in {files} files"
          + (f"; {tars[-1].name} {tars[-1].stat().st_size / 2**20:.0f} MiB" if tars else ""))
    source_env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    package_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
                   "LANG": "C.UTF-8"}
    try:
        rows = [measure("source", [sys.executable, "-m", "app"], source_env, args.repeat),
                measure("package", [str(exe)], package_env, args.repeat)]
    except (RuntimeError, subprocess.SubprocessError) as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    print(f"{'':8} {'--version':>18} {'window shown':>18} {'whole self-test':>18}   (first / median of {args.repeat})")
    for r in rows:
        cells = [f"{r['first_' + k]:.2f} / {r[k]:.2f} s" for k in ("version_s", "window_s", "self_test_s")]
        print(f"{r['how']:8} " + " ".join(f"{c:>18}" for c in cells))
    print("BENCH " + json.dumps({"size_bytes": size, "files": files, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
