#!/usr/bin/env python3
"""Held connections (issue 23): `berth status --json` with a fresh SSH connection per call against
the same through the keepers that hold them between calls (app/remote/held.py), on N real sshd's on
loopback (bench/fleet.py's Fleet: own ports, host keys, roots; no model deployed).

    .venv/bin/python bench/held_connection.py [N ...] [--repeat 5]     # default: 1 20

Per N: `fresh` (BERTH_SSH_PERSIST=0: handshake, login and agent session on every call), the `first`
held call (it starts the keepers: a fresh connection each, plus the keeper's start), then `held`
(the keepers answer): the median wall time of --repeat calls each, and sshd's logins per call.
Everything lives in one temp folder, removed at the end with every keeper and sshd stopped.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]
from fleet import Fleet, add_all, missing_tools  # noqa: E402
from _kit import table  # noqa: E402


def logins(fleet: Fleet) -> int:
    return sum(s.log_path.read_text().count("Accepted publickey") for s in fleet.sshds)


def timed(fleet: Fleet, persist: str, repeat: int) -> tuple[float, float]:
    """(median seconds, logins per call) of `berth status --json` over the whole fleet."""
    fleet.env["BERTH_SSH_PERSIST"] = persist
    before, took = logins(fleet), []
    for _ in range(repeat):
        took.append(fleet.berth("status", "--json")[0])
    return statistics.median(took), (logins(fleet) - before) / repeat


def one_size(n: int, repeat: int, folder: Path) -> list[tuple]:
    fleet = Fleet(folder / f"n{n}", n)
    try:
        fleet.start_sshds()
        add_all(fleet)
        fresh, fresh_logins = timed(fleet, "0", repeat)
        fleet.env["BERTH_SSH_PERSIST"] = "600"
        t0 = time.perf_counter()
        fleet.berth("status", "--json")
        first = time.perf_counter() - t0
        held, held_logins = timed(fleet, "600", repeat)
        return [(n, "fresh", f"{fresh:.2f}", f"{fresh_logins:g}"), (n, "first held (starts keepers)", f"{first:.2f}", ""),
                (n, "held", f"{held:.2f}", f"{held_logins:g}"), (n, "fresh / held", f"{fresh / held:.1f}x", "")]
    finally:
        try:
            fleet.berth("server", "disconnect", "--all")
        finally:
            fleet.stop()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sizes", nargs="*", type=int, default=[1, 20])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    if missing_tools():
        print(f"needs {', '.join(missing_tools())}", file=sys.stderr)
        return 2
    rows: list[tuple] = []
    with tempfile.TemporaryDirectory(prefix="berth-held-") as tmp:
        for n in args.sizes:
            rows += one_size(n, args.repeat, Path(tmp))
    print(table(rows, ("N", "berth status --json", "median s", "sshd logins per call")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
