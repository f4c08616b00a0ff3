"""The alert commands: alert_add, alert_list, alert_state, alert_test, alert_silence, alert_remove.
A change is validated first (nothing is written for a refused one), then made under the server lock
and journalled like a job change. Thread-safe for the session: all state is in files."""
import os
from datetime import timedelta

from . import alerteval, alertsend, alertstore, jobreboot, scheduler, supervise
from .alertrules import MAX_FOR_S, channel_shown, check_reason, check_rule_name, describe_s, parse_duration, validated
from .jobclock import iso, now, parse
from .jobs import _changed, scheduler_state, unneeded
from .layout import AgentError

TEST_TIMEOUT_S = 10.0
ALERT_KEYS = ("rule", "server", "model", "state", "since", "value", "summary", "notified", "silenced", "inhibited",
              "expr")


def _server(req):
    server = req.get("server")
    if not isinstance(server, str) or not server or len(server) > 128 or any(c in server for c in "\r\n\0"):
        raise AgentError("the request must name the server (as the desktop calls it)", "usage")
    return server


def alert_add(ctx, req):
    rule = validated(req)
    server = _server(req)
    if rule["model"] is not None and ctx.root.model(rule["model"]).current_version() is None:
        deployed = [n for n in ctx.root.model_names() if ctx.root.model(n).current_version()]
        raise AgentError("%s is not deployed on this server (deployed there: %s)" % (
            rule["model"], ", ".join(deployed) or "nothing"), "not_deployed")
    rule.update(server=server, created=iso(now()), created_by=ctx.actor)

    def add(root):
        if os.path.isfile(alertstore.rule_file(root, rule["name"])):
            raise AgentError("an alert named %s already exists on this server; pick another name or remove it first"
                             % rule["name"], "alert_exists")
        alertstore.write_rule(root, rule)
        return {"rule": describe(root, rule), "detail": "%s%s for %s -> %s" % (
            rule["expr"], " of " + rule["model"] if rule["model"] else "", _dur(rule["for_s"]),
            ", ".join(channel_shown(c) for c in rule["notify"]))}
    result = _changed(ctx, req, "alert.add", rule["name"], rule["model"], add, what="alert")
    result["evaluator"] = _unattended(ctx.root)
    return result


def _dur(seconds):
    return describe_s(seconds) if seconds else "0s"


def _unattended(root):
    pid, started = scheduler.ensure(root)
    env = {"PYTHONPATH": supervise.PACKAGE_PARENT, "PYTHONDONTWRITEBYTECODE": "1"}
    reboot = jobreboot.ensure(root, scheduler.command(root), env)
    return {"pid": pid, "started": started, "reboot": reboot["method"], "reboot_detail": reboot["detail"]}


def describe(root, rule, silences=None, t=None):
    """The RULE record of alert_list."""
    silences = alertstore.read_silences(root) if silences is None else silences
    t = t or now()
    s = silences.get(rule["name"]) if alerteval.silenced(silences, rule["name"], t) else None
    return {"name": rule["name"], "server": rule.get("server"), "model": rule.get("model"), "when": rule["expr"],
            "for": _dur(rule.get("for_s", 0)), "repeat": _dur(rule.get("repeat_s", 0)),
            "notify": [channel_shown(c) for c in rule["notify"]],
            "silenced_until": s.get("until") if s else None, "silence_reason": s.get("reason") if s else None}


def alert_list(ctx, req):
    silences = alertstore.read_silences(ctx.root)
    return {"rules": [describe(ctx.root, r, silences) for r in alertstore.list_rules(ctx.root)],
            "evaluator": scheduler_state(ctx.root)}


def alert_state(ctx, req):
    """Firing, pending and recently resolved alerts, newest change first, with what each channel answered."""
    listed, problems = alertstore.load_rules(ctx.root)
    rules = {r["name"]: r for r in listed}
    state, broken = alertstore.load_state(ctx.root)
    out = []
    for a in state["alerts"].values():
        if a.get("rule") not in rules:
            continue
        row = {k: a.get(k) for k in ALERT_KEYS}
        row.update(server=rules[a["rule"]].get("server"), notified=a.get("notified") or [],
                   silenced=bool(a.get("silenced")), inhibited=bool(a.get("inhibited")))
        out.append(row)
    out.sort(key=lambda r: (r["state"] != "firing", r["state"] != "pending", -_ts(r["since"]), r["rule"]))
    waiting = [{"channel": channel_shown(d["channel"]), "attempts": d.get("attempts", 0),
                "next_try": d.get("next_try"),
                "last_answer": d.get("last_answer")} for d in alertstore.queued(ctx.root)]
    said = alertstore.read_problems(ctx.root)
    problems = said + [p for p in problems + [broken] if p and p not in said]
    return {"alerts": out, "queued": waiting, "evaluator": dict(scheduler_state(ctx.root), problems=problems)}


def _ts(text):
    t = parse(text)
    return t.timestamp() if t else 0


def alert_test(ctx, req):
    """Send a test notification through each channel of the rule now; what each receiver answered."""
    rule = alertstore.read_rule(ctx.root, req.get("name"))
    t = now()
    item = {"rule": rule["name"], "model": rule.get("model"), "expr": rule["expr"], "state": "firing",
            "since": iso(t), "value": None, "summary": "a test of alert %s from Berth: no action needed" % rule["name"]}
    body = alerteval.payload(rule.get("server") or "server", "test", [("test", item)], t)
    results = []
    for channel in rule["notify"]:
        said = alertsend.send(channel, body, TEST_TIMEOUT_S)
        results.append({"channel": channel_shown(channel), "ok": bool(said.get("ok")), "status": said.get("status"),
                        "answer": said.get("answer")})
        alertstore.record(ctx.root, {"id": "test", "status": "test", "channel": channel_shown(channel),
                                     "ok": bool(said.get("ok")), "at": iso(t), "answer": said.get("answer"),
                                     "alerts": [rule["name"]]})
    return {"results": results}


def alert_silence(ctx, req):
    rule = alertstore.read_rule(ctx.root, req.get("name"))
    seconds = parse_duration(req.get("for"), "--for", 60, MAX_FOR_S * 4)
    reason = check_reason(req.get("reason"))
    until = iso(now() + timedelta(seconds=seconds))

    def silence(root):
        silences = alertstore.read_silences(root)
        silences[rule["name"]] = {"until": until, "reason": reason.strip(), "by": ctx.actor, "at": iso(now())}
        alertstore.write_silences(root, silences)
        return {"rule": describe(root, rule, silences), "until": until,
                "detail": "silenced until %s: %s" % (until, reason.strip())}
    return _changed(ctx, req, "alert.silence", rule["name"], rule.get("model"), silence, what="alert")


def alert_remove(ctx, req):
    rule = alertstore.read_rule(ctx.root, check_rule_name(req.get("name")))

    def remove(root):
        alertstore.remove_rule(root, rule["name"])
        return {"removed": rule["name"], "detail": "removed"}
    result = _changed(ctx, req, "alert.remove", rule["name"], rule.get("model"), remove, what="alert")
    unneeded(ctx.root)
    return result


COMMANDS = {"alert_add": alert_add, "alert_list": alert_list, "alert_state": alert_state, "alert_test": alert_test,
            "alert_silence": alert_silence, "alert_remove": alert_remove}
