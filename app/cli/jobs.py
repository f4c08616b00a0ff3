"""`berth job add|edit|list|run|runs|preview|pause|resume|remove`: scheduled jobs on a server (docs/jobs.md).
The agent validates and runs them; this checks what it can before connecting, and prints."""
from __future__ import annotations

import argparse
import sys
import time

from app.agent.layout import AgentError
from app.errors import BerthError
from app.formatting import natural_key

from . import options
from .dbpassword import canonical, passwords_for
from .base import ActionGroup, Failed, workspace
from .output import print_json, print_table
from .per_server import for_each_server, thread_workspaces
from .selectors import named_one, resolve_one, resolve_servers

LIST_KEYS = ["server", "name", "model", "version", "schedule", "tz", "next_run", "last_run", "last_state", "paused"]
RUN_KEYS = ["run_id", "started", "ended", "state", "rows_in", "rows_out", "errors", "version", "late"]
WAIT_POLL_S = 1.0
ONE_SERVER_HELP = "the job's server: its name, or a glob or env:ENVIRONMENT that picks just that one"


class JobGroup(ActionGroup):
    name = "job"
    help = "scheduled jobs: a model over an inbox folder or a query, into a results database"

    def add_actions(self, actions) -> None:
        add = actions.add_parser("add", help="add a job to a model on a server")
        add.add_argument("job_name", metavar="NAME")
        add.add_argument("--model", required=True)
        options.add_server(add, required=True, help=ONE_SERVER_HELP)
        when = add.add_mutually_exclusive_group(required=True)
        when.add_argument("--every", metavar="INTERVAL", help="10m, 1h, 1d")
        when.add_argument("--cron", metavar="EXPR")
        add.add_argument("--tz", default="UTC", metavar="ZONE")
        source = add.add_mutually_exclusive_group(required=True)
        source.add_argument("--input-dir", metavar="DIR", help="an inbox folder on the server")
        source.add_argument("--input-db", metavar="URL", help="sqlite:///ABSOLUTE/PATH.db on the server, or "
                                                              "postgresql://USER@HOST:PORT/DB")
        add.add_argument("--pattern", metavar="GLOB", help="files of the inbox to take (default: all)")
        add.add_argument("--input-sql", metavar="QUERY")
        add.add_argument("--watermark", metavar="COLUMN")
        add.add_argument("--output", required=True, metavar="URL", help="sqlite:///ABSOLUTE/PATH.db on the server, or "
                         "postgresql://USER@HOST:PORT/DB (its password: berth db-password URL)")
        add.add_argument("--table", required=True)
        add.add_argument("--version", metavar="V", help="pin a release (default: follow current)")
        options.add_reason(add)
        self.add_parser = add

        edit = actions.add_parser("edit", help="change a job's schedule, zone, pattern or version (its input and "
                                  "output are not editable: remove the job and add it again)")
        edit.add_argument("job_name", metavar="NAME")
        options.add_server(edit, required=True, help=ONE_SERVER_HELP)
        when = edit.add_mutually_exclusive_group()
        when.add_argument("--every", metavar="INTERVAL", help="10m, 1h, 1d")
        when.add_argument("--cron", metavar="EXPR")
        edit.add_argument("--tz", metavar="ZONE")
        edit.add_argument("--pattern", metavar="GLOB", help="files of the inbox to take")
        pin = edit.add_mutually_exclusive_group()
        pin.add_argument("--version", metavar="V", help="pin a release")
        pin.add_argument("--follow-current", action="store_true", help="use the current release at each run")
        options.add_reason(edit)
        self.edit_parser = edit

        listed = actions.add_parser("list", help="the jobs of the servers picked (default: of every server), listed from them at once")
        options.add_servers(listed)
        options.add_json(listed)

        run = actions.add_parser("run", help="run a job now")
        run.add_argument("job_name", metavar="NAME")
        options.add_server(run, required=True, help=ONE_SERVER_HELP)
        run.add_argument("--wait", action="store_true", help="until the run ends (exit 1 if it failed)")
        options.add_reason(run)

        runs = actions.add_parser("runs", help="a job's recent runs")
        runs.add_argument("job_name", metavar="NAME")
        options.add_server(runs, required=True, help=ONE_SERVER_HELP)
        options.add_json(runs)
        runs.add_argument("--limit", type=_positive, default=20, help="how many, newest first (default 20)")

        preview = actions.add_parser("preview", help="the latest result rows and error rows of a job's output")
        preview.add_argument("job_name", metavar="NAME")
        options.add_server(preview, required=True, help=ONE_SERVER_HELP)
        preview.add_argument("--limit", type=_positive, default=10, help="rows of each, newest first (default 10)")
        options.add_json(preview)

        for action, what in (("pause", "stop running a job on schedule"), ("resume", "run a paused job again"),
                             ("remove", "remove a job (its output database stays)")):
            p = actions.add_parser(action, help=what)
            p.add_argument("job_name", metavar="NAME")
            options.add_server(p, required=True, help=ONE_SERVER_HELP)
            options.add_reason(p)

    def do_add(self, args) -> int:
        from app.deploy import queries

        ws = one_server(args)
        request = _add_request(args, self.add_parser)
        with ws.connect_to_change("job.add", args.server, args.reason) as t:
            try:
                result = ws.job_change(t, "add", args.job_name, args.model, request, reason=args.reason)
            except BerthError as e:
                if e.code not in queries.NOT_DEPLOYED_CODES or queries.known_model(t, args.model):
                    raise
                raise queries.not_deployed(t, args.model, str(e)) from None
        job = result["job"]
        print(f"job {job['name']} added on {args.server}: {job['model']} {job['schedule']} ({job['tz']}), "
              f"next run {job['next_run']}")
        print(scheduler_line(result.get("scheduler") or {}), file=sys.stderr)
        return 0

    def do_edit(self, args) -> int:
        from app.deploy import jobs  # on use, as every use case: app/cli/changes.py

        ws = one_server(args)
        request = edit_request(args, self.edit_parser)
        with ws.connect_to_change("job.edit", args.server, args.reason) as t:
            job = jobs.find(t, args.job_name)
            job = ws.job_change(t, "edit", args.job_name, job["model"], request, reason=args.reason)["job"]
        pattern = f", pattern {job['input']['pattern']}" if job["input"].get("kind") == "dir" else ""
        print(f"job {job['name']} on {args.server} edited: {job['schedule']}, version {job['version'] or 'current'}"
              f"{pattern}, next run {job['next_run'] or '(paused)'}")
        return 0

    def do_preview(self, args) -> int:
        from app.deploy import jobs

        ws = one_server(args)
        with ws.connect(args.server) as t:
            jobs.find(t, args.job_name)
            found = jobs.preview(t, args.job_name, args.limit)
        if args.json:
            print_json(found)
            return 0
        for title, part in (("results", found), ("errors", found["errors"])):
            print(f"{title} (newest first):")
            print_table([dict(zip(part["columns"], row)) for row in part["rows"]], part["columns"])
        return 0

    def do_list(self, args) -> int:
        ws = workspace()
        names = resolve_servers(ws, args.server) if args.server else sorted(
            (s.name for s in ws.servers.list()), key=natural_key)
        own = thread_workspaces(ws)

        def jobs_of(name: str) -> tuple[str, dict]:
            with own().connect(name) as t:
                return name, t.agent("job_list", {})

        outcome = for_each_server(names, jobs_of, named=named_one(args.server, names), parallel=args.parallel)
        found = [dict(j, server=name) for name, answer in outcome.results for j in answer["jobs"]]
        if args.json:
            print_json([{k: j.get(k) for k in LIST_KEYS} for j in found])
        else:
            for name, answer in outcome.results:
                if answer["jobs"]:  # who runs them with Berth closed, and after a reboot
                    print(f"{name}: {scheduler_line(answer.get('scheduler') or {})}", file=sys.stderr)
            print_table([dict(j, version=j.get("version") or "current", flag=flag(j)) for j in found],
                        ["server", "name", "model", "version", "schedule", "next_run", "last_run", "last_state",
                         "flag"])
        return outcome.exit_code

    def do_run(self, args) -> int:
        from app.deploy import jobs

        ws = one_server(args)
        with ws.connect_to_change("job.run", args.server, args.reason) as t:
            job = jobs.find(t, args.job_name)
            run = ws.job_change(t, "run", args.job_name, job["model"], reason=args.reason)["run"]
            print(f"job {args.job_name} on {args.server}: run {run['run_id']} started ({run['version']})",
                  file=sys.stderr)
            if not args.wait:
                print(run["run_id"])
                return 0
            while run["state"] == "running":
                time.sleep(WAIT_POLL_S)
                run = next((r for r in jobs.runs(t, args.job_name, 50) if r["run_id"] == run["run_id"]), run)
        print(f"run {run['run_id']}: {run['state']}, {run['rows_in']} in, {run['rows_out']} out, "
              f"{run['errors']} error(s){'; ' + run['detail'] if run.get('detail') else ''}")
        return 0 if run["state"] == "ok" else 1

    def do_runs(self, args) -> int:
        from app.deploy import jobs

        ws = one_server(args)
        with ws.connect(args.server) as t:
            jobs.find(t, args.job_name)
            found = jobs.runs(t, args.job_name, args.limit)
        if args.json:
            print_json([{k: r.get(k) for k in RUN_KEYS} for r in found])
        else:
            print_table([dict(r, late="late" if r.get("late") else "") for r in found], RUN_KEYS)
        return 0

    def _change(self, args, action: str) -> int:
        from app.deploy import jobs

        ws = one_server(args)
        with ws.connect_to_change(f"job.{action}", args.server, args.reason) as t:
            job = jobs.find(t, args.job_name)
            ws.job_change(t, action, args.job_name, job["model"], reason=args.reason)
        print(f"job {args.job_name} on {args.server}: {action}d" if action != "resume" else
              f"job {args.job_name} on {args.server}: resumed")
        return 0

    def do_pause(self, args) -> int:
        return self._change(args, "pause")

    def do_resume(self, args) -> int:
        return self._change(args, "resume")

    def do_remove(self, args) -> int:
        return self._change(args, "remove")


def one_server(args):
    """The workspace, with args.server resolved to the one server it picks (a name, or a glob or an
    environment matching one; picking several is wrong usage, listing them), before connecting."""
    ws = workspace()
    args.server = resolve_one(ws, args.server)
    return ws


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def scheduler_line(s: dict) -> str:
    running = f"scheduler running (pid {s['pid']})" if s.get("pid") else "scheduler NOT running (Berth starts it at its next connection)"
    return f"{running}; after a reboot: {s.get('reboot_detail') or s.get('reboot') or 'unknown'}"


def flag(job: dict) -> str:
    """The table's marker: what needs a look first."""
    if job.get("failing"):
        return "FAILING"
    if job.get("late"):
        return "LATE"
    return "paused" if job.get("paused") else ""


def _add_request(args, parser) -> dict:
    """The job_add request, with what can be checked here refused before connecting."""
    from app.agent.jobsqlite import check_table
    from app.agent.schedule import parse_schedule

    if args.input_db and not (args.input_sql and args.watermark):
        parser.error("--input-db needs --input-sql QUERY and --watermark COLUMN")
    if args.input_dir and (args.input_sql or args.watermark):
        parser.error("--input-sql and --watermark go with --input-db, not --input-dir")
    if args.pattern and not args.input_dir:
        parser.error("--pattern goes with --input-dir")
    try:
        parse_schedule(every=args.every, cron=args.cron, tz=args.tz)
        check_table(args.table)
    except AgentError as e:
        raise Failed(f"{'the schedule does not parse: ' if e.code == 'bad_schedule' else ''}{e}") from None
    if not args.output.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise Failed(f"--output {args.output!r}: expected sqlite:///ABSOLUTE/PATH.db (on the server) or postgresql://…")
    if args.input_dir:
        if not args.input_dir.startswith("/"):
            raise Failed(f"--input-dir {args.input_dir!r}: give the folder's absolute path on the server")
        source = {"kind": "dir", "path": args.input_dir, "pattern": args.pattern or "*"}
    else:
        source = {"kind": "db", "url": args.input_db, "sql": args.input_sql, "watermark": args.watermark}
    urls = []
    for url, what in ((args.input_db, "--input-db"), (args.output, "--output")):
        if url and url.startswith(("postgresql://", "postgres://")) and canonical(url, what) not in urls:
            urls.append(canonical(url, what))
    passwords = passwords_for(urls)  # from the keyring: to the server's passfile, never into the job
    return {"model": args.model, "schedule": {"every": args.every} if args.every else {"cron": args.cron},
            "tz": args.tz, "input": source, "output": {"url": args.output, "table": args.table},
            "version": args.version, **({"db_passwords": passwords} if passwords else {})}


def edit_request(args, parser) -> dict:
    """The job_edit request, with what can be checked here refused before connecting."""
    from app.agent.schedule import parse_schedule

    if not (args.every or args.cron or args.tz or args.pattern or args.version or args.follow_current):
        parser.error("give what to change: --every or --cron, --tz, --pattern, --version or --follow-current")
    try:
        if args.every or args.cron:
            parse_schedule(every=args.every, cron=args.cron, tz=args.tz or "UTC")
        elif args.tz:
            parse_schedule(every="1d", tz=args.tz)  # the zone alone
    except AgentError as e:
        raise Failed(f"{'the schedule does not parse: ' if e.code == 'bad_schedule' else ''}{e}") from None
    request: dict = {"tz": args.tz, "pattern": args.pattern, "version": args.version,
                     "follow_current": bool(args.follow_current)}
    if args.every or args.cron:
        request["schedule"] = {"every": args.every} if args.every else {"cron": args.cron}
    return request
