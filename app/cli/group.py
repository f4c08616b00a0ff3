"""The group form of deploy, rollback, start and stop (`--server` repeated, a glob or `env:NAME`,
`--parallel`, `--max-failures`, `--canary-first`): progress one whole line at a time, each
prefixed with its server; a summary of what each server runs now on stdout (a table, or --json);
exit 1 when any server failed or was skipped, 130 after Ctrl-C. The rolling itself is
app/rollout.py."""
from __future__ import annotations

import argparse
import sys
import threading

from app.deploy.rolling import SUCCESS, RollingSummary, describe

from .options import parallel_count
from .output import ProgressPrinter, print_json, print_table

STOPPED_WHY = {"budget": "the failure budget (--max-failures {max_failures}) was spent",
               "canary": "the canary ({canary}) did not succeed",
               "stopped": "interrupted"}


def add_group_options(parser) -> None:
    parser.add_argument("--server", action="append", required=True, metavar="SEL",
                        help="a server name, a glob ('web-*') or env:NAME; repeat for more. Several "
                             "servers are changed as a group: rolling, a summary at the end")
    parser.add_argument("--parallel", type=parallel_count, default=None, metavar="N",
                        help="servers changed at once in a group (default 10)")
    parser.add_argument("--max-failures", type=_at_least(0), default=None, metavar="N",
                        help="failed servers a group tolerates before it starts no more (default 0)")
    parser.add_argument("--canary-first", action="store_true",
                        help="change one server alone first; the others only if it succeeded")
    parser.add_argument("--json", action="store_true", help="the group's summary as JSON")


def is_group(args, names: list[str]) -> bool:
    """One plain server name and no group option: the single command, as it always was."""
    return not (args.server == names and len(names) == 1 and args.parallel is None and args.max_failures is None
                and not args.canary_first and not args.json)


def group_plan_options(args) -> dict:
    return {"parallel": args.parallel or 10, "max_failures": args.max_failures or 0,
            "canary_first": args.canary_first}


class LinePrinter:
    """Whole lines to one stream from many threads, never two halves interleaved."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()

    def event(self, server: str, text: str) -> None:
        """run_rolling's on_event: a server started, or what it runs now."""
        self.line(server, text if text == "started" else f"now: {text}")

    def line(self, server: str, text: str) -> None:
        with self.lock:
            self.stream.write(f"[{server}] {text}\n")
            self.stream.flush()

    def progress_for(self, verbose: bool):
        """on_progress(server, Progress): one ProgressPrinter per server, writing through this."""
        printers: dict[str, ProgressPrinter] = {}

        def on_progress(server, p) -> None:
            if server not in printers:
                printers[server] = ProgressPrinter(verbose, stream=_ServerLines(self, server))
            printers[server](p)
        return on_progress


class _ServerLines:
    """A stream for one server's ProgressPrinter: gathers its writes into lines (print writes the
    text and the newline apart), hands each whole line on; never a terminal (no \\r redraws)."""

    def __init__(self, printer: LinePrinter, server: str):
        self.printer, self.server, self.pending = printer, server, ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.printer.line(self.server, line.lstrip())
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def report(summary: RollingSummary, action: str, plan, as_json: bool) -> int:
    """Print the summary; returns the exit code."""
    failed, skipped = summary.count("failed", "cancelled"), summary.count("skipped")
    if as_json:
        print_json(dict(summary.to_dict(), action=action, ok=summary.ok,
                        **{k: getattr(plan, k) for k in ("parallel", "max_failures", "canary_first")},
                        now={o.server: describe(o, action) for o in summary.outcomes}))
    else:
        print_table([{"server": o.server, "now": describe(o, action)} for o in summary.outcomes], ["server", "now"])
    done = summary.count(*SUCCESS)
    line = f"{action}: {done} of {len(summary.outcomes)} server(s) done, {failed} failed, {skipped} skipped"
    if summary.stopped:
        why = STOPPED_WHY[summary.stopped].format(max_failures=plan.max_failures,
                                                  canary=plan.names[0] if plan.names else "")
        line += f"; no more servers were started: {why}"
    print(line, file=sys.stderr)
    if summary.interrupted:
        return 130
    return 0 if summary.ok else 1


def _at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}")
        return value
    return parse
