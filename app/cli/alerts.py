"""`berth alert add|list|test|silence|remove` and `berth alerts`: alert rules evaluated on the server
(docs/alerts.md). The rule is checked here before connecting (the agent checks it again); `--server`
takes selectors (a rule added to each server picked)."""
from __future__ import annotations

import sys

from app.agent.alertrules import MAX_FOR_S, check_reason, parse_duration, validated
from app.agent.layout import AgentError
from app.formatting import natural_key

from . import options
from .base import ActionGroup, Command, Failed, workspace
from .output import print_json, print_table
from .per_server import for_each_server, thread_workspaces
from .selectors import named_one, resolve_servers

NOTIFY_HELP = "webhook:URL, email:ADDRESS or alertmanager:URL; repeat for more"


def _checked(fn, *args):
    try:
        return fn(*args)
    except AgentError as e:
        raise Failed(str(e)) from None


def _servers(ws, selectors: list[str]) -> list[str]:
    return resolve_servers(ws, selectors) if selectors else sorted((s.name for s in ws.servers.list()), key=natural_key)


class AlertGroup(ActionGroup):
    name = "alert"
    help = "alert rules evaluated on the server, sent to a webhook, e-mail or Alertmanager"

    def add_actions(self, actions) -> None:
        add = actions.add_parser("add", help="add an alert rule on servers")
        add.add_argument("alert_name", metavar="NAME")
        options.add_servers(add, required=True)
        add.add_argument("--model", help="only this model (default: every model, or the whole server)")
        add.add_argument("--when", required=True, metavar="EXPR",
                         help="down, error_rate>R, p95_ms>MS, memory_pct>P, cpu_pct>P, disk_free_pct<P, job_failed, "
                              "job_late, auto_rollback")
        add.add_argument("--for", dest="for_", default="0", metavar="DURATION",
                         help="how long it must hold before it fires (30s, 2m; default 0)")
        add.add_argument("--repeat", default="4h", metavar="DURATION",
                         help="a reminder this often while it keeps firing (default 4h)")
        add.add_argument("--notify", action="append", required=True, metavar="TARGET", help=NOTIFY_HELP)
        options.add_reason(add)

        listed = actions.add_parser("list", help="the alert rules of servers (default: of every server)")
        options.add_servers(listed)
        options.add_json(listed)

        test = actions.add_parser("test", help="send a test alert through each channel of a rule now")
        test.add_argument("alert_name", metavar="NAME")
        options.add_servers(test, required=True)

        silence = actions.add_parser("silence", help="send nothing for a rule for a while")
        silence.add_argument("alert_name", metavar="NAME")
        options.add_servers(silence, required=True)
        silence.add_argument("--for", dest="for_", required=True, metavar="DURATION", help="1h, 2d")
        silence.add_argument("--reason", required=True, help="why (kept with the silence and in the audit log)")

        remove = actions.add_parser("remove", help="remove an alert rule")
        remove.add_argument("alert_name", metavar="NAME")
        options.add_servers(remove, required=True)
        options.add_reason(remove)

    def _each(self, args, work) -> int:
        ws = workspace()
        names = resolve_servers(ws, args.server)
        own = thread_workspaces(ws)
        outcome = for_each_server(names, lambda name: work(own(), name), named=named_one(args.server, names),
                                  parallel=args.parallel)
        return outcome.exit_code

    def do_add(self, args) -> int:
        request = {"when": args.when, "for": args.for_, "repeat": args.repeat, "notify": args.notify,
                   "model": args.model}
        rule = _checked(validated, dict(request, name=args.alert_name))  # the agent's own check, before connecting
        request.update(notify=rule["notify"], **{"for": rule["for_s"], "repeat": rule["repeat_s"]})

        def add(ws, name: str) -> None:
            ws.check_reason(name, args.reason)
            with ws.connect(name) as t:
                result = ws.alert_change(t, "add", args.alert_name, args.model, request, reason=args.reason)
            rule = result["rule"]
            print(f"alert {rule['name']} added on {name}: {rule['when']}"
                  f"{' of ' + rule['model'] if rule['model'] else ''} for {rule['for']} -> {', '.join(rule['notify'])}")
            print(f"{name}: {evaluator_line(result.get('evaluator') or {})}", file=sys.stderr)
        return self._each(args, add)

    def do_list(self, args) -> int:
        from app.deploy import alerts  # on use: `berth status` and `--help` load no alert client

        ws = workspace()
        names = _servers(ws, args.server)
        own = thread_workspaces(ws)

        def rules_of(name: str) -> list[dict]:
            with own().connect(name) as t:
                return [dict(r, server=name) for r in alerts.rules(t)]

        outcome = for_each_server(names, rules_of, named=named_one(args.server, names), parallel=args.parallel)
        found = [r for rows in outcome.results for r in rows]
        if args.json:
            print_json([{k: r.get(k) for k in alerts.RULE_KEYS} for r in found])
        else:
            print_table([dict(r, model=r["model"] or "", notify=", ".join(r["notify"]),
                              silenced=f"until {r['silenced_until']}" if r["silenced_until"] else "") for r in found],
                        ["server", "name", "model", "when", "for", "notify", "silenced"])
        return outcome.exit_code

    def do_test(self, args) -> int:
        from app.deploy import alerts

        failed = []

        def test(ws, name: str) -> None:
            with ws.connect(name) as t:
                alerts.find(t, args.alert_name)
                for r in alerts.test(t, args.alert_name):
                    print(f"{name}: {r['channel']}: {'ok' if r['ok'] else 'FAILED'} {r['status']}"
                          f"{': ' + r['answer'] if r['answer'] else ''}")
                    if not r["ok"]:
                        failed.append(r)
        code = self._each(args, test)
        return 1 if failed else code

    def do_silence(self, args) -> int:
        seconds = _checked(parse_duration, args.for_, "--for", 60, MAX_FOR_S * 4)
        _checked(check_reason, args.reason)  # the agent's own check, before connecting: nothing audited
        from app.deploy import alerts

        def silence(ws, name: str) -> None:
            with ws.connect(name) as t:
                rule = alerts.find(t, args.alert_name)
                result = ws.alert_change(t, "silence", args.alert_name, rule["model"],
                                         {"for": seconds, "reason": args.reason}, reason=args.reason)
            print(f"alert {args.alert_name} on {name}: silenced until {result['until']}")
        return self._each(args, silence)

    def do_remove(self, args) -> int:
        from app.deploy import alerts

        def remove(ws, name: str) -> None:
            ws.check_reason(name, args.reason)
            with ws.connect(name) as t:
                rule = alerts.find(t, args.alert_name)
                ws.alert_change(t, "remove", args.alert_name, rule["model"], reason=args.reason)
            print(f"alert {args.alert_name} on {name}: removed")
        return self._each(args, remove)


class AlertsCommand(Command):
    name = "alerts"
    help = "alerts firing, pending and recently resolved"

    def add_arguments(self, parser) -> None:
        options.add_servers(parser)
        options.add_json(parser)

    def run(self, args) -> int:
        from app.deploy import alerts

        ws = workspace()
        names = _servers(ws, args.server)
        own = thread_workspaces(ws)

        def alerts_of(name: str) -> list[dict]:
            with own().connect(name) as t:
                answer = alerts.alerts(t)
            for problem in (answer.get("evaluator") or {}).get("problems") or []:
                print(f"{name}: alerts: {problem}", file=sys.stderr)  # the evaluator runs, but not on everything
            return [dict(a, server=name) for a in answer["alerts"]]

        outcome = for_each_server(names, alerts_of, named=named_one(args.server, names), parallel=args.parallel)
        found = [a for rows in outcome.results for a in rows]
        if args.json:
            print_json([{k: a.get(k) for k in alerts.ALERT_KEYS} for a in found])
        else:
            print_table([dict(a, model=a["model"] or "", state=_shown(a), notified=_notified(a)) for a in found],
                        ["server", "rule", "model", "state", "since", "value", "notified"])
        return outcome.exit_code


def _shown(a: dict) -> str:
    state = a["state"].upper() if a["state"] == "firing" else a["state"]
    return state + (" (silenced)" if a.get("silenced") else "") + (" (inhibited)" if a.get("inhibited") else "")


def _notified(a: dict) -> str:
    return ", ".join(f"{n['channel']} {'ok' if n['ok'] else 'FAILED: ' + (n.get('answer') or '')[:60]}"
                     for n in a.get("notified") or [])


def evaluator_line(s: dict) -> str:
    running = f"evaluator running (pid {s['pid']})" if s.get("pid") else \
        "evaluator NOT running (Berth starts it at its next connection)"
    return f"{running}; after a reboot: {s.get('reboot_detail') or s.get('reboot') or 'unknown'}"
