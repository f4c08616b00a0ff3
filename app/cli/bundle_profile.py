"""`berth bundle profile PATH`: the bundle on this computer under load, its figures printed and kept
(by bundle sha256) for the deploy's "needs about … ; box has …" line."""
from __future__ import annotations

import sys

from app.deploy import profile_report
from app.deploy.profile import profile_bundle

from .output import ProgressPrinter, print_json


def measure(path, seconds: float, connections: int, verbose: bool = False) -> dict:
    printer = ProgressPrinter(verbose)
    print(f"Profiling {path} on this computer", file=sys.stderr)
    result = profile_bundle(path, seconds=seconds, connections=connections, on_progress=printer)
    profile_report.save(result)
    return result


def profile(args) -> int:
    result = measure(args.path, args.seconds, args.connections, getattr(args, "verbose", False))
    if args.json:
        print_json(result)
    else:
        print("\n".join(profile_report.report_lines(result)))
    return 0
