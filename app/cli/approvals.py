"""`berth approvals --server S` and `berth approve ID --server S [--reason TEXT] [--reject]`: four eyes
for production, enforced by the server's agent (docs/permissions.md). A held change is made by the
server exactly as it was asked; approving names the request and the digest of what the approver
was shown (`--sha256`, from `berth approvals`; else the one this command prints before approving)."""
from __future__ import annotations

import sys

from . import options
from .base import Command
from .on_server import checked, on_server
from .output import ProgressPrinter, print_json, print_table

COLUMNS = ["id", "state", "what", "requested_by", "requested_at", "expires_at", "decided_by", "digest"]
SHORT = 16  # hex digits of a request's digest shown in the table; `--sha256` takes at least these


class ApprovalsCommand(Command):
    name = "approvals"
    help = "changes waiting on a server for a second person's approval (four eyes), and those decided lately"

    def add_arguments(self, parser) -> None:
        options.add_server(parser, required=True)
        options.add_json(parser)

    def run(self, args) -> int:
        from app.deploy import approvals

        name, listing = on_server(args.server, lambda t, _ws: approvals.listed(t))
        if args.json:
            print_json(dict(listing, server=name))
            return 0
        waiting = sum(r["state"] == "pending" for r in listing["requests"])
        print(f"{name}: {waiting} change(s) waiting for approval" +
              ("; approve one with `berth approve ID --server " + name + "`" if waiting else ""))
        if listing["requests"]:
            print_table([dict({c: r.get(c) or "" for c in COLUMNS}, digest=(r.get("digest") or "")[:SHORT])
                         for r in listing["requests"]], COLUMNS)
        return 0


class ApproveCommand(Command):
    name = "approve"
    help = "approve (or --reject) a change another user asked for on a production server; the server makes it"

    def add_arguments(self, parser) -> None:
        parser.add_argument("id", metavar="ID", help="the request's id, as `berth approvals` lists it")
        options.add_server(parser, required=True)
        options.add_reason(parser, help="why you approve (or reject) it: kept with the decision in both audit logs")
        parser.add_argument("--reject", action="store_true", help="refuse the change (the requester may withdraw "
                                                                  "their own this way)")
        parser.add_argument("--sha256", metavar="HEX", help="approve only if the request is still the one "
                            "`berth approvals` showed: its digest (the first 16 or more hex digits)")

    def run(self, args) -> int:
        from app.agent.approvals import check_digest
        from app.agent.approvalstore import check_id
        from app.cli.base import Failed

        checked(lambda: check_id(args.id), lambda: check_digest(args.sha256))
        if args.reject and args.sha256:
            raise Failed("--sha256 binds an approval; a rejection needs none (whatever the request has become, "
                         "rejected it never runs): leave it out")
        name, result = on_server(args.server, lambda t, ws: self._decide(t, ws, args))
        if args.reject:
            print(f"{name}: {result['detail']}")
            return 0
        print(f"{name}: approved {args.id}: {result.get('command')} done: {result.get('detail', '')}",
              file=sys.stdout)
        return 0

    @staticmethod
    def _decide(transport, ws, args) -> dict:
        """Read the request first and say what is approved; the server refuses if it is not that one."""
        from app.deploy import approvals
        from app.deploy.changes import run_to_end

        if not args.reject:
            shown = approvals.find(transport, args.id)
            print(f"{transport.name}: approving {args.id}: {shown['command']} {shown['model']} "
                  f"{shown.get('version') or ''} asked by {shown['requested_by']}: {shown['what']}; "
                  f"request sha256 {shown.get('digest')}")
        expect = args.sha256 or (None if args.reject else shown.get("digest"))
        return run_to_end(approvals.decide(transport, ws.audit, args.id, args.reason, args.reject, expect),
                          ProgressPrinter(getattr(args, "verbose", False)))
