"""`berth monitor`: live CPU, memory, traffic and latency of servers and their models, as a table
refreshed in place or as JSON lines; `--once` takes one sample of each server, all at once, and exits."""
from __future__ import annotations

import json
import sys

from app.formatting import natural_key

from . import options
from .base import Command, workspace
from .monitor_report import print_monitor
from .output import print_json
from .per_server import for_each_server, thread_workspaces
from .selectors import named_one, resolve_servers


class MonitorCommand(Command):
    name = "monitor"
    help = "live CPU, memory, traffic and latency of servers and their models"

    def add_arguments(self, parser) -> None:
        options.add_servers(parser, parallel=False)
        parser.add_argument("--model", help="only this model")
        parser.add_argument("--once", action="store_true",
                            help="one sample of each server (measured over 0.25 s, or --interval), then exit")
        options.add_json(parser, help="JSON: a list with --once, else one line per sample")
        parser.add_argument("--interval", type=options.interval, metavar="S",
                            help="seconds between samples, 0.25-60 (default 1); with --once, what the sample is "
                                 "measured over (default 0.25)")
        options.add_parallel(parser)

    def run(self, args) -> int:
        ws = workspace()
        names = resolve_servers(ws, args.server) if args.server else sorted(
            (s.name for s in ws.servers.list()), key=natural_key)
        if args.once:
            return _once(ws, names, args)
        args.interval = args.interval or 1.0
        return _live(names, args)


def _once(ws, names: list[str], args) -> int:
    from app.monitor.once import WINDOW, check_model, one_sample
    from app.monitor.sample_json import monitor_json

    own = thread_workspaces(ws)
    outcome = for_each_server(names, lambda name: one_sample(own(), name, args.interval or WINDOW),
                              named=named_one(args.server, names), parallel=args.parallel)
    check_model(args.model, outcome.results)
    if args.json:
        print_json([monitor_json(s, args.model) for s in outcome.results])
    else:
        print_monitor(outcome.results, args.model)
    return outcome.exit_code


def _live(names: list[str], args) -> int:
    """Samples come from every server's stream (on the shared reader and timer threads); this thread
    alone prints, in arrival order."""
    import queue

    from app.monitor.live import LiveBoard
    from app.monitor.stream import SampleStream, open_source

    inbox: queue.Queue = queue.Queue()
    streams = [SampleStream(name, open_source(name), args.interval,
                            on_sample=lambda s: inbox.put(("sample", s)),
                            on_state=lambda server, state, detail: inbox.put(("state", (server, state, detail))))
               for name in names]
    board = LiveBoard(names, args.model)
    try:
        for s in streams:
            s.start()
        while True:
            kind, value = inbox.get()
            if kind == "state":
                _show_state(board, *value)
            else:
                _show_sample(board, value, args)
    except KeyboardInterrupt:
        return 130  # as shells report a command ended by Ctrl-C
    finally:
        for s in streams:
            s.stop()


def _show_state(board, server: str, state: str, detail: str) -> None:
    if state == "reconnecting":
        board.reconnecting(server)
        print(f"berth: {server}: reconnecting: {detail}", file=sys.stderr, flush=True)
    elif state == "live":
        print(f"berth: {server}: live", file=sys.stderr, flush=True)


def _show_sample(board, sample: dict, args) -> None:
    from app.monitor.sample_json import monitor_json

    board.add(sample)
    if args.json:
        print(json.dumps(monitor_json(sample, args.model)), flush=True)
        return
    if not board.ready:
        return  # wait for every server's first sample before the first table
    if sys.stdout.isatty():
        sys.stdout.write("\033[H\033[2J")
    print_monitor(board.table(), args.model)
    sys.stdout.flush()
