"""`berth promote MODEL --from SERVER --to SERVER[,SERVER...] [--version V]`: the exact release that
runs on one server deployed to others, one after the other, stopping at the first failure
(app/promotion.py). Exit 0 when every target took it, 1 otherwise (the servers done are listed)."""
from __future__ import annotations

import sys

from . import options
from .base import Command, Failed, workspace
from .output import ProgressPrinter, print_json


class PromoteCommand(Command):
    name = "promote"
    help = "deploy the exact release (same bundle sha256) that runs on one server to others, in order"

    def add_arguments(self, parser) -> None:
        parser.add_argument("model", metavar="MODEL")
        parser.add_argument("--from", dest="source", required=True, metavar="SERVER", help="the server it runs on")
        parser.add_argument("--to", required=True, metavar="SERVER[,SERVER...]", help="the servers, in this order")
        parser.add_argument("--version", default="", help="a release on --from (default: its current one)")
        options.add_reason(parser)
        options.add_json(parser)

    def run(self, args) -> int:
        from app.promotion import promote

        targets = [t.strip() for t in args.to.split(",")]
        if not all(targets) or len(set(targets)) != len(targets):
            raise Failed(f"--to {args.to}: give distinct server names separated by commas")
        ws = workspace()
        printers: dict[str, ProgressPrinter] = {}

        def shown(server, p):
            if server not in printers:
                print(f"{server}:", file=sys.stderr, flush=True)
                printers[server] = ProgressPrinter(args.verbose)
            printers[server](p)

        result = promote(ws, args.model, args.source, targets, args.version, args.reason, shown)
        if args.json:
            print_json(result.to_dict())
        what = f"{args.model} {result.version} (sha256 {result.sha256[:12]}) from {args.source}"
        if result.ok:
            if not args.json:
                print(f"promoted {what} to {', '.join(result.done)}")
            return 0
        done = ", ".join(result.done) or "none"
        rest = f"; not started: {', '.join(result.not_started)}" if result.not_started else ""
        print(f"berth: promoting {what} stopped at {result.failed}, which keeps the release it had: {result.error} "
              f"(done: {done}{rest})", file=sys.stderr)
        return 1
