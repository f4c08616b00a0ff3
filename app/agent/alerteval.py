"""The alert evaluator: every EVAL_S, the figures (alertfigures.py) against each rule; an alert goes
pending -> firing after the rule's --for, then resolved; notifications are grouped per server the
way Alertmanager groups them (changes sent together, at most one change notification per
GROUP_INTERVAL_S, a reminder per rule's repeat interval); `down` of a model inhibits its error_rate
and p95_ms; a silenced rule sends nothing. Each notification is queued per channel and retried with
exponential backoff. It runs as a thread of the scheduler process (docs/alerts.md says why); all
state is in files (alertstore.py), so a test may also call `Evaluator.tick` with an injected time."""
import os
import time
import uuid
from datetime import timedelta

from . import alertsend, alertstore
from .alertfigures import Figures, instances
from .alertrules import channel_shown, channel_text
from .jobclock import iso, now, parse

EVAL_S = 10.0
GROUP_INTERVAL_S = 300  # changes of a group after a notification wait this long (Alertmanager's default)
RECENT_S = 24 * 3600  # resolved alerts stay in `berth alerts` this long
RECENT_MAX = 200
SEND_TIMEOUT_S = 5.0
DELIVER_BUDGET_S = 30.0  # a round tries deliveries this long at most; the rest wait for the next round
CLOCK_SLACK_S = 60  # a stored time further ahead than this: the clock was set back
BACKOFF_S, BACKOFF_MAX_S, GIVE_UP_S = 10, 600, 24 * 3600
INHIBITED_BY_DOWN = ("error_rate", "p95_ms")
VERSION = "berth-alert/1"


def _when(text):
    """A stored time, or None for one missing or unreadable (a hand-edited file must not stop a round)."""
    try:
        return parse(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _age(t, text):
    then = _when(text)
    return (t - then).total_seconds() if then else None


def silenced(silences, rule_name, t):
    s = silences.get(rule_name)
    return bool(isinstance(s, dict) and (_when(s.get("until")) or t) > t)


def clock_set_back(state, t):
    """Times stored ahead of `t` by more than CLOCK_SLACK_S mean the clock went back (NTP, a VM
    restored): each becomes `t`, so a pending alert's --for, the group interval and a retry count
    from now instead of waiting until the clock has caught up again. -> how many were moved."""
    moved = 0
    late = t + timedelta(seconds=CLOCK_SLACK_S)
    for record, keys in [(a, ("active_since", "since", "last_sent")) for a in state["alerts"].values()] + [
            (state["group"], ("last_sent",))]:
        for k in keys:
            when = _when(record.get(k))
            if when is not None and when > late:
                record[k] = iso(t)
                moved += 1
    return moved


class Evaluator:
    def __init__(self, root):
        self.root = root
        self.figures = None
        self.problems = []  # what the last round could not use (`berth alerts` shows it)

    def close(self):
        if self.figures is not None:
            self.figures.close()
            self.figures = None

    def prime(self):
        """A first sample, the baseline the next round's rates are measured from."""
        if self.figures is None:
            self.figures = Figures(self.root)
        self.figures.sampler.take(time.monotonic())

    def tick(self, t=None):
        """One round at clock time `t` (default: jobclock.now()); returns the notifications queued."""
        t = t or now()
        with alertstore.EvalLock(self.root):
            listed, problems = alertstore.load_rules(self.root)
            rules = {r["name"]: r for r in listed}
            state, broken = alertstore.load_state(self.root)
            if broken:
                alertstore.set_aside(self.root)
                problems.append(broken)
            if clock_set_back(state, t):
                problems.append("the clock went back: pending times, the group interval and retries restart now")
            if self.figures is None:
                self.figures = Figures(self.root)
            figures = self.figures.take(time.monotonic(), t)
            step(state["alerts"], rules, figures, t)
            sent = notify(self.root, state, rules, alertstore.read_silences(self.root), t)
            deliver(self.root, state, t)
            alertstore.write_state(self.root, state)
            self.problems = problems
            alertstore.write_problems(self.root, problems)
        return sent


def step(alerts, rules, figures, t):
    """pending / firing / resolved for every alert of every rule at `t`."""
    seen = set()
    for rule in rules.values():
        for alert_id, model, active, value, summary in instances(rule, figures):
            seen.add(alert_id)
            a = alerts.get(alert_id)
            if active:
                if a is None or a["state"] == "resolved":  # (again): what was sent about it is kept
                    a = alerts[alert_id] = dict(a or {}, rule=rule["name"], model=model, state="pending",
                                                active_since=iso(t), since=iso(t))
                if a["state"] == "pending" and _age(t, a["active_since"]) >= rule.get("for_s", 0):
                    a.update(state="firing", since=iso(t))
            elif a is not None:
                if a["state"] == "pending":
                    del alerts[alert_id]
                    continue
                if a["state"] == "firing":
                    a.update(state="resolved", since=iso(t))
            if alert_id in alerts:
                alerts[alert_id].update(value=value, summary=summary, expr=rule["expr"], kind=rule["kind"])
    for alert_id in list(alerts):
        a = alerts[alert_id]
        if a.get("rule") not in rules:
            del alerts[alert_id]  # its rule was removed: nothing to notify it through
        elif alert_id not in seen and a["state"] != "resolved":
            if a["state"] == "pending":
                del alerts[alert_id]
            else:
                a.update(state="resolved", since=iso(t), summary="gone (the model or job was removed)")
    recent = sorted((k for k, a in alerts.items() if a["state"] == "resolved"), key=lambda k: alerts[k]["since"])
    for i, k in enumerate(recent):  # bounded; a resolved alert whose firing was sent waits to be told resolved
        if alerts[k].get("sent_state") != "firing" and (_age(t, alerts[k]["since"]) > RECENT_S
                                                        or i < len(recent) - RECENT_MAX):
            del alerts[k]


def _down_models(alerts):
    return {o.get("model") for o in alerts.values() if o.get("kind") == "down" and o["state"] == "firing"}


def notify(root, state, rules, silences, t):
    """Queue the group's notification when something changed (firing, or resolved after a firing was
    sent) and the group interval allows, else a reminder for what keeps firing; returns them."""
    alerts = state["alerts"]
    down = _down_models(alerts)  # once, not per alert: thousands of rules stay one pass
    for a in alerts.values():
        a["silenced"] = silenced(silences, a["rule"], t)
        a["inhibited"] = a.get("kind") in INHIBITED_BY_DOWN and a.get("model") in down
    open_ = {k: a for k, a in alerts.items() if not a["silenced"] and not a["inhibited"] and a["rule"] in rules}
    changed = [k for k, a in open_.items() if (a["state"] == "firing" and a.get("sent_state") != "firing")
               or (a["state"] == "resolved" and a.get("sent_state") == "firing")]
    group = state["group"]
    last = _age(t, group.get("last_sent"))
    if changed and (last is None or last >= GROUP_INTERVAL_S):
        still = [k for k, a in open_.items() if a["state"] == "firing" and k not in changed]
        keys = sorted(changed) + sorted(still)
        status = "firing" if any(open_[k]["state"] == "firing" for k in keys) else "resolved"
        group["last_sent"] = iso(t)
    else:
        keys = sorted(k for k, a in open_.items() if a["state"] == "firing" and a.get("sent_state") == "firing"
                      and (_age(t, a.get("last_sent")) or 0) >= rules[a["rule"]].get("repeat_s", 14400))
        status = "reminder"
    if not keys:
        return []
    for k in keys:
        alerts[k].update(sent_state=alerts[k]["state"], last_sent=iso(t))
    return queue(root, rules, [(k, alerts[k]) for k in keys], status, t)


def payload(server, status, items, t):
    models = {a.get("model") for _k, a in items}
    group = server if len(models) != 1 or None in models else "%s/%s" % (server, models.pop())
    return {"version": VERSION, "status": status, "group": group, "server": server, "sent": iso(t),
            "alerts": [{"rule": a["rule"], "model": a.get("model"), "expr": a.get("expr"), "state": a["state"],
                        "since": a.get("since"), "value": a.get("value"), "summary": a.get("summary") or ""}
                       for _k, a in items]}


def queue(root, rules, items, status, t):
    """One delivery per channel, each with the alerts of the rules that name that channel."""
    by_channel = {}
    for k, a in items:
        for channel in rules[a["rule"]]["notify"]:
            by_channel.setdefault(channel_text(channel), (channel, []))[1].append((k, a))
    out = []
    for text, (channel, its) in sorted(by_channel.items()):
        server = rules[its[0][1]["rule"]].get("server") or "server"
        d = {"id": "%s-%s" % (t.strftime("%Y%m%dT%H%M%SZ"), uuid.uuid4().hex[:8]), "channel": channel,
             "payload": payload(server, status, its, t), "alerts": [k for k, _a in its], "attempts": 0,
             "created": iso(t), "next_try": iso(t)}
        alertstore.enqueue(root, d)
        out.append(d)
    return out


def deliver(root, state, t, timeout=SEND_TIMEOUT_S, budget=DELIVER_BUDGET_S):
    """Try the deliveries that are due; a failed one waits 10 s, 20 s, 40 s ... up to 10 min, and is
    given up after a day. Each alert keeps the last word of each of its channels (`notified`).
    A channel's deliveries go in the order they were queued (a `resolved` never overtakes its
    `firing`): one waiting or failed holds the channel's later ones for the round. The round stops
    trying after `budget` seconds: 200 deliveries for a receiver that hangs do not hold the evaluator."""
    started, held = time.monotonic(), set()
    for d in alertstore.queued(root):  # oldest first (ids start with the time queued)
        due = _when(d.get("next_try")) or t
        if due > t + timedelta(seconds=BACKOFF_MAX_S + CLOCK_SLACK_S):
            due = t  # set for a clock that has since gone back: try now
        channel = channel_text(d["channel"])
        if due > t or channel in held:
            held.add(channel)
            continue
        if time.monotonic() - started > budget:
            break
        said = alertsend.send(d["channel"], d["payload"], timeout)
        d["attempts"] = d.get("attempts", 0) + 1
        answer = ("%s %s" % (said.get("status", ""), said.get("answer", ""))).strip()
        note = {"channel": channel_shown(d["channel"]), "ok": bool(said.get("ok")), "at": iso(t), "answer": answer,
                "attempts": d["attempts"]}
        for k in d.get("alerts", []):
            a = state["alerts"].get(k)
            if a is not None:
                a["notified"] = [n for n in a.get("notified", []) if n["channel"] != note["channel"]] + [note]
        entry = dict(note, id=d["id"], status=d["payload"]["status"], alerts=d.get("alerts", []))
        if note["ok"]:
            alertstore.dequeue(root, d, entry)
        elif (_age(t, d.get("created")) or 0) > GIVE_UP_S:
            alertstore.dequeue(root, d, dict(entry, answer="given up after a day: " + answer))
        else:
            held.add(channel)
            wait = min(BACKOFF_MAX_S, BACKOFF_S * 2 ** min(d["attempts"] - 1, 20))
            d.update(next_try=iso(t + timedelta(seconds=wait)), last_answer=answer)
            alertstore.update(root, d)


def run(root, stopping, log):
    """The scheduler process's evaluator thread: a round every EVAL_S while the root has rules."""
    evaluator, logged = Evaluator(root), []
    try:
        if alertstore.has_rules(root):  # (rules removed meanwhile: no sample of every runner for nothing)
            evaluator.prime()  # the first round is EVAL_S after this baseline, so its rates cover a whole round
        while not stopping and os.path.isdir(root.meta):
            started = time.monotonic()
            while not stopping and time.monotonic() - started < EVAL_S:
                time.sleep(0.2)
            try:
                if stopping:
                    break
                if alertstore.has_rules(root):
                    evaluator.tick()
                else:
                    evaluator.close()
            except Exception as e:  # a broken rule file or a full disk must not end the scheduler
                said = "the evaluator's round failed: %s: %s" % (type(e).__name__, e)
                log(root, "alerts: " + said)
                try:
                    alertstore.write_problems(root, [said])
                except OSError:
                    pass
                continue
            if evaluator.problems != logged:  # said once, not every round
                for problem in evaluator.problems:
                    log(root, "alerts: " + problem)
                logged = list(evaluator.problems)
    finally:
        evaluator.close()
