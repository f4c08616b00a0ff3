"""What runs where, and changing it: deploy, status, releases, predict, rollback, stop, start.
The rules (a production server may need a reason) live in the Workspace; these only print."""
from __future__ import annotations
# the use cases (app/rollout.py, app/deploy/) are imported by the command that runs them: `berth
# status` loads no deploy code

import json
import sys
from pathlib import Path

from app import errors
from app.errors import BerthError
from app.formatting import natural_key

from . import group, options
from .base import Command, Failed, workspace
from .output import ProgressPrinter, print_json, print_table
from .per_server import for_each_server, thread_workspaces
from .selectors import named_one, resolve_one, resolve_servers

STATUS_COLUMNS = ["server", "model", "version", "state", "port", "pid"]


class DeployCommand(Command):
    name = "deploy"
    help = "deploy a bundle folder or .tar.gz"

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path)
        group.add_group_options(parser)
        parser.add_argument("--keep", type=int, default=5, help="releases kept on the server (default 5)")
        parser.add_argument("--profile", action="store_true",
                            help="measure the bundle on this computer first (`berth bundle profile`) and compare "
                                 "it with the server; without it a profile kept for the bundle is used")
        options.add_reason(parser)

    def run(self, args) -> int:
        from app import rollout
        from app.deploy.changes import run_to_end

        ws = workspace()
        names = resolve_servers(ws, args.server)
        measured = None
        if args.profile:  # kept by the bundle's sha256: a group's deploys find it there too
            from .bundle_profile import measure

            measured = measure(args.path, 5.0, 8, args.verbose)
        if group.is_group(args, names):
            return _run_group(ws, args, names, "deploy", {"bundle": str(args.path)},
                              lambda on_progress: rollout.deploy_work(args.path, args.reason, args.keep, on_progress))
        server = args.server = names[0]
        with ws.connect_to_change("deploy", server, args.reason) as t:
            job = ws.deploy(t, args.path, reason=args.reason, keep=args.keep, show_plan=True, profile=measured)
            print(f"Deploying {args.path} to {server}", file=sys.stderr)
            run_to_end(job.run(), ProgressPrinter(args.verbose))
        r, model = job.result, job.trail.facts["model"]
        if r.get("already"):
            print(f"{model} {r['version']} was already current and running on {server}")
        else:
            print(f"{model} {r['version']} is current on {server} (was {r.get('previous') or 'nothing'})")
        return 0


class StatusCommand(Command):
    name = "status"
    help = "what runs where"

    def add_arguments(self, parser) -> None:
        options.add_servers(parser)
        options.add_json(parser)
        parser.add_argument("--prometheus-targets", action="store_true",
                            help="print a Prometheus file_sd target list of the models' stable ports")

    def run(self, args) -> int:
        ws = workspace()
        names = resolve_servers(ws, args.server) if args.server else sorted(
            (s.name for s in ws.servers.list()), key=natural_key)
        own = thread_workspaces(ws)

        def status_of(name: str) -> list[dict]:
            w = own()
            with w.connect(name, held=True) as t:
                return w.server_status(t, with_jobs=True)

        outcome = for_each_server(names, status_of, named=named_one(args.server, names), parallel=args.parallel)
        if args.prometheus_targets:
            print_json(prometheus_targets(r for server_rows in outcome.results for r in server_rows))
            return outcome.exit_code
        # alerts_firing: the server's firing alerts (each of its rows), `berth alerts` says more
        # detail, watchdog: only a model that has them (a crash loop, restarts, a missing `current` link)
        rows = [dict({k: r.get(k) for k in STATUS_COLUMNS + ["release_port", "jobs", "alerts_firing", "experiment"]},
                     **{k: r[k] for k in ("detail", "watchdog") if r.get(k)})
                for server_rows in outcome.results for r in server_rows]
        if args.json:
            print_json(rows)
        else:  # the marker: a failing or late job of the model, `berth job list` says more
            print_table([dict(r, jobs=", ".join(f"{j['name']} {j['state'].upper()}" for j in r["jobs"] or []))
                         for r in rows], STATUS_COLUMNS + ["jobs"])
            for r in rows:  # a crash loop the watchdog gave up on, a missing `current` link
                if r.get("detail"):
                    print(f"{r['server']} {r['model']}: {r['detail']}")
        return outcome.exit_code


def prometheus_targets(rows) -> list[dict]:
    """Prometheus file_sd: one target per model with a stable port, on the server's loopback (where
    the runner listens: run Prometheus on the server, or reach it through a tunnel; docs/serving.md)."""
    return [{"targets": [f"127.0.0.1:{r['stable_port']}"],
             "labels": {"berth_server": r["server"], "berth_model": r["model"]}}
            for r in rows if r.get("stable_port")]


class ReleasesCommand(Command):
    name = "releases"
    help = "a model's releases on servers"

    def add_arguments(self, parser) -> None:
        parser.add_argument("model")
        options.add_servers(parser, required=True,
                            help="a server's name, a glob of names ('web-*') or env:ENVIRONMENT; repeat for more")
        options.add_json(parser)

    def run(self, args) -> int:
        from app.deploy import queries
        from app.deploy.release_diff import requirement_lines

        ws = workspace()
        names = resolve_servers(ws, args.server)
        own = thread_workspaces(ws)

        def releases_on(name: str) -> list[dict]:
            with own().connect(name, held=True) as t:
                rows = queries.releases(t, args.model, requirements=args.json)
                if not rows:
                    raise queries.not_deployed(t, args.model)
            return [dict(r, server=name) for r in rows]

        outcome = for_each_server(names, releases_on, named=named_one(args.server, names), parallel=args.parallel)
        rows = [r for server_rows in outcome.results for r in server_rows]
        if args.json:
            print_json([dict({k: r[k] for k in ("server", "version", "current", "sha256", "deployed_at")},
                             training=(r.get("manifest") or {}).get("training") or {}, profile=r.get("profile"),
                             requirements=list(requirement_lines(r.get("requirements")).values()))
                        for r in rows])
        else:  # newest first on each server; the server column only when there are several
            table = [dict(r, current="*" if r["current"] else "", sha256=(r["sha256"] or "")[:12],
                          by=(r.get("deployed_by") or {}).get("user", ""))
                     for server_rows in outcome.results for r in reversed(server_rows)]
            columns = ["current", "version", "deployed_at", "by", "sha256"]
            print_table(table, (["server"] if len(names) > 1 else []) + columns)
        return outcome.exit_code


class PredictCommand(Command):
    name = "predict"
    help = "send one input to a model; prints its JSON output"

    def add_arguments(self, parser) -> None:
        parser.add_argument("model")
        options.add_server(parser, required=True)
        parser.add_argument("--input", required=True, metavar="JSON_OR_@FILE")

    def run(self, args) -> int:
        from app.deploy import queries

        raw = _json_input(args.input)
        ws = workspace()
        with ws.connect(resolve_one(ws, args.server)) as t:
            try:
                output, seconds, headers = queries.predict(t, args.model, raw.encode())
            except BerthError as e:
                if e.code != errors.INVALID_INPUT:
                    raise
                raise BerthError(f"{e}; {_example_beside(t, args.model)}", e.code, e.detail) from None
        print(json.dumps(output))
        if args.verbose:
            print(f"{headers.get('X-Berth-Model')} {headers.get('X-Berth-Version')} answered in "
                  f"{seconds * 1000:.1f} ms", file=sys.stderr)
        return 0


def _example_beside(transport, model: str) -> str:
    """The release's input example, to show next to a 422: what the input should look like."""
    try:
        example = transport.agent("example", {"model": model}).get("example")
    except BerthError as e:
        return f"its input example could not be read: {e}"
    if example is None:
        return "the bundle has no input example"
    text = json.dumps(example)
    return "send input shaped like its input example: " + (text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + "…")


EXAMPLE_CHARS = 600  # an example shown in an error stays a few lines of a terminal


def _json_input(raw: str) -> str:
    """Checked here, so a typo is one clear line before any connection."""
    if raw.startswith("@"):
        try:
            raw = Path(raw[1:]).read_text()
        except OSError as e:
            raise Failed(f"cannot read the input file {raw[1:]}: {e.strerror}") from None
    try:
        json.loads(raw)
    except ValueError as e:
        raise Failed(f"the input is not valid JSON: {e}") from None
    return raw


class ChangeCommand(Command):
    """rollback, stop and start: one agent command each, the same arguments and output line."""

    def __init__(self, name: str, help: str):
        self.name, self.help = name, help

    def add_arguments(self, parser) -> None:
        parser.add_argument("model")
        group.add_group_options(parser)
        if self.name == "rollback":
            parser.add_argument("--to", metavar="VERSION")
        options.add_reason(parser)

    def run(self, args) -> int:
        from app import rollout
        from app.deploy import queries
        from app.deploy.changes import run_to_end

        ws = workspace()
        params = {"to": args.to} if getattr(args, "to", None) else {}
        names = resolve_servers(ws, args.server)
        if group.is_group(args, names):
            return _run_group(ws, args, names, self.name, {"model": args.model},
                              lambda on_progress: rollout.change_work(self.name, args.model, args.reason, params,
                                                                      on_progress))
        args.server = names[0]
        with ws.connect_to_change(self.name, args.server, args.reason) as t:
            try:
                result = run_to_end(ws.change(t, self.name, args.model, reason=args.reason, **params),
                                    ProgressPrinter(args.verbose))
            except BerthError as e:
                # a model the server has never seen: name the ones it has (a typo, usually)
                if e.code not in queries.NOT_DEPLOYED_CODES or queries.known_model(t, args.model):
                    raise
                raise queries.not_deployed(t, args.model, str(e)) from None
        what = {"rollback": f"{result.get('previous')} -> {result.get('version')}",
                "start": f"{result.get('version')} running",
                "stop": f"{result.get('version')} {result.get('detail')}"}[self.name]
        print(f"{self.name} {args.model} on {args.server}: {what}")
        return 0


def _run_group(ws, args, names: list[str], action: str, what: dict, make_work) -> int:
    """The group form of deploy, rollback, start and stop (app/cli/group.py prints it); `what`:
    the model or the bundle; `make_work(on_progress)` is one server's work (app/rollout.py)."""
    from app import rollout

    plan = rollout.GroupPlan(action, names, args.server, reason=args.reason, **what, **group.group_plan_options(args))
    rollout.check_reasons(ws, plan)  # before the first line: a refusal is the only one
    printer = group.LinePrinter()
    work = make_work(printer.progress_for(args.verbose))
    print(f"{action} {plan.model or plan.bundle} on {len(names)} server(s), {min(plan.parallel, len(names))} at once"
          + (", a canary first" if plan.canary_first else ""), file=sys.stderr)
    summary = rollout.run_group(ws, plan, work, on_event=printer.event)
    return group.report(summary, action, plan, args.json)


COMMANDS = (DeployCommand(), StatusCommand(), ReleasesCommand(), PredictCommand(),
            ChangeCommand("rollback", "make an earlier release current (default: the one before)"),
            ChangeCommand("stop", "stop a model's runner"),
            ChangeCommand("start", "start a model's current release"))
