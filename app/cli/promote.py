"""`berth promote MODEL --from SERVER --to SERVER[,SERVER...] [--version V]`: the exact release that
runs on one server deployed to others, one after the other, stopping at the first failure
(app/promotion.py). Exit 0 when every target took it, 1 otherwise (the servers done are listed).
`--server SEL` instead of --to (a name, a glob, env:NAME; repeatable, with --parallel, --max-failures,
--canary-first): the group form, rolled as a group deploy is (app/rollout.py), one summary at the end."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from . import group, options
from .base import Command, Failed, workspace
from .output import ProgressPrinter, print_json


class PromoteCommand(Command):
    name = "promote"
    help = "deploy the exact release (same bundle sha256) that runs on one server to others, in order"

    def add_arguments(self, parser) -> None:
        parser.add_argument("model", metavar="MODEL")
        parser.add_argument("--from", dest="source", required=True, metavar="SERVER", help="the server it runs on")
        to = parser.add_mutually_exclusive_group(required=True)
        to.add_argument("--to", metavar="SERVER[,SERVER...]", help="the servers, in this order, one at a time")
        to.add_argument("--server", action="append", metavar="SEL",
                        help="a server name, a glob ('web-*') or env:NAME; repeat for more: promoted as a group")
        parser.add_argument("--parallel", type=options.parallel_count, default=None, metavar="N",
                            help="with --server: servers changed at once (default 10)")
        parser.add_argument("--max-failures", type=group._at_least(0), default=None, metavar="N",
                            help="with --server: failed servers tolerated before no more start (default 0)")
        parser.add_argument("--canary-first", action="store_true",
                            help="with --server: one server alone first; the others only if it succeeded")
        parser.add_argument("--version", default="", help="a release on --from (default: its current one)")
        options.add_reason(parser)
        options.add_json(parser)

    def run(self, args) -> int:
        from app.promotion import promote

        if args.server:
            return _promote_group(args)
        if args.parallel is not None or args.max_failures is not None or args.canary_first:
            raise Failed("--parallel, --max-failures and --canary-first go with --server (the group form), not --to")
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


def _promote_group(args) -> int:
    """The release fetched from --from once, then rolled over the servers picked as a group deploy
    of it (each server health-gated, the failure budget, the canary); audited as `promote.group`."""
    from app import rollout
    from app.promotion import fetch

    from .selectors import resolve_servers

    ws = workspace()
    names = resolve_servers(ws, args.server)
    ws.servers.get(args.source)  # an unknown --from is refused before anything starts
    if args.source in names:
        raise Failed(f"--server picks {args.source}, the server promoted from; promote to other servers")
    plan = rollout.GroupPlan("promote", names, args.server, reason=args.reason, model=args.model, source=args.source,
                             **group.group_plan_options(args))
    rollout.check_reasons(ws, plan)  # before the release is fetched: a refusal is the only line
    printer = group.LinePrinter()
    on_progress = printer.progress_for(args.verbose)
    with tempfile.TemporaryDirectory(prefix="berth-promote-") as tmp:
        folder = Path(tmp) / args.model
        info = fetch(ws, args.model, args.source, args.version, folder, on_progress)
        plan.bundle = str(folder)
        print(f"promote {args.model} {info['version']} (sha256 {info['sha256'][:12]}) from {args.source} to "
              f"{len(names)} server(s), {plan.parallel} at once" + (", a canary first" if plan.canary_first else ""),
              file=sys.stderr)
        summary = rollout.run_group(ws, plan, rollout.deploy_work(folder, args.reason, 5, on_progress),
                                    on_event=printer.event)
    return group.report(summary, "promote", plan, args.json)
