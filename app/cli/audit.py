"""`berth audit ...`: list, verify, export and sync the audit log.

The PDF report is drawn with Qt's PDF writer (app.ui.audit.report_pdf, headless), imported only
for `--format pdf`: this module is one of the two entry points allowed to reach into app.ui."""
from __future__ import annotations

from pathlib import Path

from app.formatting import natural_key

from . import options
from .base import ActionGroup, Failed, workspace
from .output import print_json, print_table
from .per_server import for_each_server, thread_workspaces
from .selectors import named_one, resolve_servers

FORMATS = ("csv", "json", "html", "pdf")
EVENT_KEYS = ("id", "ts", "actor", "ssh_user", "server", "model", "version", "sha256", "action", "outcome",
              "state", "old", "new", "reason", "detail", "ref", "origin")


class AuditGroup(ActionGroup):
    name = "audit"
    help = "the audit log: list, verify, export, sync"

    def add_actions(self, actions) -> None:
        a = actions.add_parser("list", help="newest events first")
        options.add_audit_filters(a)
        options.add_json(a)
        a.add_argument("--limit", type=int, default=1000)
        a = actions.add_parser("verify", help="check the hash chain and its anchors; exit 1 and name what is wrong")
        a.add_argument("--servers", action="store_true",
                       help="also check the log (or the --file export) against every known server's journal")
        a.add_argument("--file", type=Path, metavar="EXPORT.json",
                       help="check a JSON export instead (no database needed)")
        options.add_json(a)
        a = actions.add_parser("export", help="the events as csv, json, or a report in html or pdf")
        options.add_audit_filters(a)
        a.add_argument("--format", choices=FORMATS, help="default: from the file's extension")
        a.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
        a = actions.add_parser("sync", help="import the events of servers' journals this desktop has not seen")
        options.add_servers(a, help=options.SERVERS_HELP.replace("all", "all but local"))
        actions.add_parser("rebuild", help="set berth.sqlite aside and rebuild the log from every server's journal")

    def run(self, args) -> int:
        if args.action == "rebuild" or (args.action == "verify" and args.file and not args.servers):
            return self.dispatch(args, None)  # without opening the database: it may be the damaged one
        return self.dispatch(args, workspace())

    def do_verify(self, args, ws) -> int:
        if args.file:
            from app.audit.exported import verify_export

            verdict = verify_export(args.file)
            if args.servers:  # the journals' heads for the export's desktop bind the export to them
                ws.check_export(verdict)
        else:
            verdict = ws.verify_audit(servers=args.servers)
        print_json(verdict.to_dict()) if args.json else print(verdict.message)
        return 0 if verdict.ok else 1

    def do_rebuild(self, args, _ws) -> int:
        from .audit_rebuild import rebuild_audit_log

        ws, said = rebuild_audit_log()
        for line in said:
            print(line)
        names = sorted((s.name for s in ws.servers.list()), key=natural_key)
        own = thread_workspaces(ws)

        def sync(name: str) -> str:
            w = own()
            with w.connect(name) as t:
                r = w.sync_journal(t)
            return f"{name}: {r.imported} events imported from its journal" + (f"; {r.problem}" if r.problem else "")

        outcome = for_each_server(names, sync, named=False, parallel=options.PARALLEL)
        for line in outcome.results:
            print(line)
        return outcome.exit_code

    def do_list(self, args, ws) -> int:
        from app.audit.query import query_events

        rows = [{k: r[k] for k in EVENT_KEYS} for r in query_events(ws.db, _audit_filter(args), limit=args.limit)]
        if args.json:
            print_json(rows)
            return 0
        table = [dict(r, outcome=r["state"], change=f"{r['old']} -> {r['new']}" if r["old"] or r["new"] else "",
                      reason=_one_line(r["reason"]), detail=_one_line(r["detail"])) for r in rows]
        print_table(table, ["ts", "actor", "server", "model", "version", "action", "outcome", "change", "reason",
                            "detail"])
        return 0

    def do_export(self, args, ws) -> int:
        from app.audit.actor import actor_label, local_actor
        from app.audit.export import export_events

        flt = _audit_filter(args)
        fmt = args.format or args.output.suffix.lstrip(".").lower()
        if fmt not in FORMATS:
            raise Failed(f"cannot tell the format from {args.output.name!r}: give --format csv|json|html|pdf")
        writer = None
        if fmt == "pdf":
            from app.ui.audit.report_pdf import write_pdf as writer  # Qt's PDF writer; runs headless
        result = export_events(ws.db, flt, fmt, args.output, exported_by=actor_label(local_actor()),
                               pdf_writer=writer)
        checked = result.verdict.message if result.verdict else \
            "the chain was not walked for a CSV (`berth audit verify`)"
        print(f"{result.count} events to {result.path} ({fmt}); {checked}")
        return 0

    def do_sync(self, args, ws) -> int:
        from app.store.servers import LOCAL

        names = resolve_servers(ws, args.server) if args.server else sorted(
            (s.name for s in ws.servers.list() if s.name != LOCAL), key=natural_key)
        own = thread_workspaces(ws)

        def sync(name: str) -> str:
            w = own()
            with w.connect(name, held=True) as t:
                r = w.sync_journal(t, full=True)
            return f"{name}: {r.imported} new of {r.seen} journal events" + (f"; {r.problem}" if r.problem else "")

        outcome = for_each_server(names, sync, named=named_one(args.server, names),
                                  parallel=args.parallel)
        for line in outcome.results:
            print(line)
        return outcome.exit_code


def _one_line(text) -> str:
    """A table row stays one line: a reason's line breaks are shown as spaces (`--json` has them)."""
    return " ".join((text or "").splitlines())


def _audit_filter(args):
    from app.audit.period import parse_time
    from app.audit.query import AuditFilter

    for bound in ("since", "until"):
        if getattr(args, bound):
            parse_time(getattr(args, bound))  # a clear error before any work
    return AuditFilter(action=args.event_action or "", **{k: getattr(args, k) or "" for k in
                                                          ("server", "model", "text", "actor", "since", "until",
                                                           "outcome")})
