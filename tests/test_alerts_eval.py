"""The alert evaluator on a real agent root with real runners and a real webhook receiver on
loopback, the desktop not running: driven round by round on the injected clock (the scheduler
process is stopped so the rounds are the test's), and once for real by the scheduler process."""
import os
import signal
import time
from datetime import datetime, timezone

import pytest

from agent_kit import call, deploy, make_bundle, scheduler_only_for_the_watchdog
from alerts_kit import Receiver, add_rule, free_port, later
from app.agent import alerteval, alertstore, scheduler, supervise
from app.agent.layout import Root
from jobs_kit import FakeClock, add_dir_job, cleanup, deploy_batch_model, journal_actions, wait_run

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc)


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "srv"
    yield r
    cleanup(r)


@pytest.fixture
def clock(tmp_path, monkeypatch):
    return FakeClock(tmp_path / "now.txt", monkeypatch, T0)


@pytest.fixture
def hook():
    r = Receiver()
    yield r
    r.stop()


def rounds(root):
    """The scheduler process stopped: the evaluator's rounds are the test's own, at the times it says."""
    scheduler.stop(Root(str(root)))
    return alerteval.Evaluator(Root(str(root)))


def runner_pid(root, model):
    m = Root(str(root)).model(model)
    return supervise.record(m, m.current_version())["pid"]


def state(root):
    result, error, _ = call(root, "alert_state")
    assert error is None, error
    return result


def test_the_scheduler_process_evaluates_by_itself(root, hook):
    """Real time, no desktop: the rule's first round fires it, the webhook gets one real POST."""
    result, error, _ = add_rule(root, "disk", "disk_free_pct<100", [f"webhook:{hook.url}"])
    assert error is None, error
    assert result["evaluator"]["pid"] and scheduler.alive(Root(str(root))) == result["evaluator"]["pid"]
    deadline = time.monotonic() + 20
    while not hook.posts and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(hook.posts) == 1, hook.posts
    body = hook.posts[0]
    assert set(body) == {"version", "status", "group", "server", "sent", "alerts"}
    assert (body["version"], body["status"], body["group"], body["server"]) == ("berth-alert/1", "firing", "srv", "srv")
    [a] = body["alerts"]
    assert set(a) == {"rule", "model", "expr", "state", "since", "value", "summary"}
    assert (a["rule"], a["model"], a["expr"], a["state"]) == ("disk", None, "disk_free_pct<100", "firing")
    assert 0 <= a["value"] < 100 and "free disk of the server" in a["summary"]
    time.sleep(0.5)  # the delivery's outcome is written after the receiver answered
    [row] = state(root)["alerts"]
    assert row["state"] == "firing" and row["notified"][0]["ok"] is True and row["notified"][0]["channel"] == \
        f"webhook:{hook.url}" and "HTTP 200 thanks" == row["notified"][0]["answer"]
    assert call(root, "alert_remove", name="disk")[1] is None
    assert scheduler_only_for_the_watchdog(root)  # the last rule gone, no job: only a running model keeps it


def test_frozen_runner_fires_down_after_for_and_resolves_after_sigcont(root, tmp_path, clock, hook):
    assert deploy(root, make_bundle(tmp_path / "echo"))[1] is None
    assert add_rule(root, "echo-down", "down", [f"webhook:{hook.url}"], model="echo", for_="30s")[1] is None
    ev = rounds(root)
    pid = runner_pid(root, "echo")
    ev.tick(T0)
    assert state(root)["alerts"] == [] and hook.posts == []  # healthy
    os.kill(pid, signal.SIGSTOP)
    try:
        ev.tick(later(T0, 10))
        [a] = state(root)["alerts"]
        assert a["state"] == "pending" and hook.posts == []
        ev.tick(later(T0, 30))
        assert state(root)["alerts"][0]["state"] == "pending" and hook.posts == []  # 20 s < --for 30s
        ev.tick(later(T0, 41))
        assert hook.statuses() == ["firing"]
        [sent] = hook.posts[0]["alerts"]
        assert (sent["rule"], sent["model"], sent["state"], hook.posts[0]["group"]) == ("echo-down", "echo", "firing",
                                                                                      "srv/echo")
        assert sent["since"] == "2026-03-02T03:00:41Z" and "echo is down" in sent["summary"]
    finally:
        os.kill(pid, signal.SIGCONT)
    ev.tick(later(T0, 60))
    assert state(root)["alerts"][0]["state"] == "resolved"
    assert hook.statuses() == ["firing"]  # the resolved waits for the group interval (5 min after the firing)
    ev.tick(later(T0, 41 + alerteval.GROUP_INTERVAL_S))
    assert hook.statuses() == ["firing", "resolved"]
    assert hook.posts[1]["alerts"][0]["state"] == "resolved"
    ev.tick(later(T0, 3600 * 5))
    assert hook.statuses() == ["firing", "resolved"]  # nothing more: no reminder for what is resolved
    ev.close()


def test_a_server_down_is_one_notification_and_down_inhibits_latency(root, tmp_path, clock, hook):
    for name in ("alpha", "beta"):
        assert deploy(root, make_bundle(tmp_path / name, name=name))[1] is None
    assert add_rule(root, "down", "down", [f"webhook:{hook.url}"])[1] is None  # every model of the server
    for name in ("alpha", "beta"):  # and a down rule per model: firing together, still one notification
        assert add_rule(root, f"{name}-down", "down", [f"webhook:{hook.url}"], model=name)[1] is None
    assert add_rule(root, "slow", "p95_ms>0", [f"webhook:{hook.url}"], model="alpha")[1] is None
    ev = rounds(root)
    pids = [runner_pid(root, n) for n in ("alpha", "beta")]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        ev.tick(T0)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert hook.statuses() == ["firing"]
    assert hook.posts[0]["group"] == "srv" and sorted((a["rule"], a["model"]) for a in hook.posts[0]["alerts"]) == [
        ("alpha-down", "alpha"), ("beta-down", "beta"), ("down", "alpha"), ("down", "beta")]
    # the latency rule's alert, made firing while alpha is down, is inhibited: nothing is sent for it
    st = alertstore.read_state(Root(str(root)))
    st["alerts"]["slow/alpha"] = {"rule": "slow", "model": "alpha", "kind": "p95_ms", "expr": "p95_ms>0",
                                  "state": "firing", "since": "2026-03-02T03:00:00Z", "active_since": "2026-03-02T03:00:00Z"}
    sent = alerteval.notify(Root(str(root)), st, {r["name"]: r for r in alertstore.list_rules(Root(str(root)))}, {},
                            later(T0, alerteval.GROUP_INTERVAL_S + 1))
    assert sent == [] and st["alerts"]["slow/alpha"]["inhibited"] is True
    ev.close()


def test_a_flapping_model_sends_no_more_than_the_group_interval_allows(root, tmp_path, clock, hook):
    """Down and up every 10 s for 15 simulated minutes, --for 0: at most one change notification per
    5 minutes (Alertmanager's group_interval), where a naive evaluator would send 90."""
    assert deploy(root, make_bundle(tmp_path / "echo"))[1] is None
    assert add_rule(root, "flap", "down", [f"webhook:{hook.url}"], model="echo")[1] is None
    ev = rounds(root)
    r = Root(str(root))
    rules = {x["name"]: x for x in alertstore.list_rules(r)}
    st = alertstore.read_state(r)
    for i in range(90):  # the figures of a model that flaps; the evaluator's own step, notify and deliver
        t = later(T0, 10 * i)
        figures = {"host": {}, "jobs": {}, "models": {"echo": {"down": i % 2 == 0}}}
        alerteval.step(st["alerts"], rules, figures, t)
        alerteval.notify(r, st, rules, {}, t)
        alerteval.deliver(r, st, t)
    assert 1 <= len(hook.posts) <= 1 + 900 // alerteval.GROUP_INTERVAL_S, hook.statuses()
    assert hook.statuses()[0] == "firing"
    alertstore.write_state(r, st)
    ev.tick(later(T0, 2000))  # a real round: echo is up, and the last word the receiver gets is resolved
    assert hook.statuses()[-1] == "resolved" and len(hook.posts) <= 2 + 900 // alerteval.GROUP_INTERVAL_S
    ev.close()


def test_a_failed_job_fires_job_failed(root, tmp_path, clock, hook):
    deploy_batch_model(root, tmp_path)
    out = tmp_path / "out.db"
    assert add_dir_job(root, tmp_path / "inbox", out)[1] is None
    assert add_rule(root, "jobs", "job_failed", [f"webhook:{hook.url}"], model="scorer")[1] is None
    ev = rounds(root)
    ev.tick(T0)
    assert hook.posts == []
    out.write_bytes(b"no longer sqlite" * 64)
    (tmp_path / "inbox" / "a.csv").write_text("x\n1\n")
    run = call(root, "job_run", name="hourly")[0]["run"]
    assert wait_run(root, "hourly", run["run_id"])["state"] == "failed"
    ev.tick(later(T0, 10))
    assert hook.statuses() == ["firing"]
    [a] = hook.posts[0]["alerts"]
    assert a["rule"] == "jobs" and a["model"] == "scorer" and a["summary"].startswith("job hourly failed: ")
    ev.close()


def test_a_silenced_rule_sends_nothing_and_the_silence_is_journalled(root, tmp_path, clock, hook):
    assert add_rule(root, "disk", "disk_free_pct<100", [f"webhook:{hook.url}"])[1] is None
    ev = rounds(root)
    result, error, _ = call(root, "alert_silence", name="disk", reason="disk swap tonight", **{"for": "1h"})
    assert error is None, error
    assert result["until"] == "2026-03-02T04:00:00Z"
    for s in (0, 10, 1800, 3590):
        ev.tick(later(T0, s))
    assert hook.posts == []
    [a] = state(root)["alerts"]
    assert a["state"] == "firing" and a["silenced"] is True and a["notified"] == []
    listed = call(root, "alert_list")[0]["rules"][0]
    assert listed["silenced_until"] == "2026-03-02T04:00:00Z" and listed["silence_reason"] == "disk swap tonight"
    assert ("alert.silence", "started") in journal_actions(root) and ("alert.silence", "ok") in journal_actions(root)
    ev.tick(later(T0, 3601))  # the silence is over: what still fires is sent now
    assert hook.statuses() == ["firing"]
    ev.close()


def test_a_receiver_that_is_down_is_retried_with_backoff_and_the_failure_shows(root, tmp_path, clock):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    assert add_rule(root, "disk", "disk_free_pct<100", [f"webhook:{url}"])[1] is None
    ev = rounds(root)
    ev.tick(T0)
    [a] = state(root)["alerts"]
    [note] = a["notified"]
    assert note["ok"] is False and note["at"] == "2026-03-02T03:00:00Z" and note["answer"].startswith("unreachable")
    [q] = state(root)["queued"]
    assert q["attempts"] == 1 and q["next_try"] == "2026-03-02T03:00:10Z"
    ev.tick(later(T0, 5))
    assert state(root)["queued"][0]["attempts"] == 1  # not due yet
    ev.tick(later(T0, 10))
    q = state(root)["queued"][0]
    assert q["attempts"] == 2 and q["next_try"] == "2026-03-02T03:00:30Z"  # 10 s, then 20 s, then 40 s ...
    hook = Receiver()
    hook.stop()
    hook.port = port
    hook.start()  # the receiver comes back on its port
    try:
        ev.tick(later(T0, 20))
        assert hook.posts == []
        ev.tick(later(T0, 30))
        assert hook.statuses() == ["firing"]
        assert state(root)["queued"] == [] and state(root)["alerts"][0]["notified"][0]["ok"] is True
    finally:
        hook.stop()
    ev.close()


BAD = [
    ("expr", dict(when="latency>5"), "is not a rule; allowed: down, error_rate>R (0..1), p95_ms>MS"),
    ("operator", dict(when="disk_free_pct>10"), "write disk_free_pct<NUMBER"),
    ("threshold on down", dict(when="down>1"), "down takes no threshold"),
    ("rate above 1", dict(when="error_rate>5"), "error_rate must be 0 to 1"),
    ("duration", dict(**{"for": "2 minutes"}), "--for '2 minutes' is not a duration"),
    ("duration too long", dict(**{"for": "30d"}), "must be from 0s to 7d"),
    ("notify kind", dict(notify=["slack:#ops"]), "write webhook:URL, email:ADDRESS or alertmanager:URL"),
    ("notify url", dict(notify=["webhook:ftp://x"]), "must start with http:// or https://"),
    ("notify email", dict(notify=["email:ops"]), "'ops' is not an e-mail address"),
    ("no notify", dict(notify=[]), "give at least one --notify"),
    ("disk per model", dict(when="disk_free_pct<10", model="echo"), "leave out --model"),
    ("name", dict(name="Disk Alert"), "invalid alert name"),
]


@pytest.mark.parametrize("label,change,says", BAD, ids=[b[0] for b in BAD])
def test_each_bad_rule_is_refused_with_one_line_and_nothing_created(root, label, change, says):
    req = dict(name="disk", when="disk_free_pct<10", notify=["webhook:http://127.0.0.1:9/x"], server="srv")
    req.update(change)
    result, error, _ = call(root, "alert_add", **req)
    assert result is None and says in error["message"] and "\n" not in error["message"], error
    assert alertstore.list_rules(Root(str(root))) == [] and scheduler_only_for_the_watchdog(root)


def test_auto_rollback_parses_and_fires_nothing_yet(root, hook):
    result, error, _ = add_rule(root, "rb", "auto_rollback", [f"webhook:{hook.url}"])
    assert error is None and result["rule"]["when"] == "auto_rollback", error


def test_a_second_rule_of_the_same_name_and_a_bad_silence_are_refused(root, hook):
    assert add_rule(root, "disk", "disk_free_pct<10", [f"webhook:{hook.url}"])[1] is None
    _, error, _ = add_rule(root, "disk", "down", [f"webhook:{hook.url}"])
    assert error["code"] == "alert_exists" and "already exists" in error["message"]
    assert [r["expr"] for r in alertstore.list_rules(Root(str(root)))] == ["disk_free_pct<10"]
    for change, says in ((dict(reason="x", **{"for": "forever"}), "--for 'forever' is not a duration"),
                         (dict(reason="x", **{"for": "10s"}), "must be from 1m to 28d"),
                         (dict(reason="  ", **{"for": "1h"}), "a silence needs a reason"),
                         (dict(name="dsk", reason="x", **{"for": "1h"}), "there is no alert dsk on this server")):
        _, error, _ = call(root, "alert_silence", **dict(dict(name="disk"), **change))
        assert error and says in error["message"], (change, error)
    assert alertstore.read_silences(Root(str(root))) == {}


def test_a_reminder_at_the_repeat_interval_while_it_keeps_firing(root, clock, hook):
    assert add_rule(root, "disk", "disk_free_pct<100", [f"webhook:{hook.url}"], repeat="1h")[1] is None
    ev = rounds(root)
    for s in (0, 10, 1800, 3590):
        ev.tick(later(T0, s))
    assert hook.statuses() == ["firing"]
    ev.tick(later(T0, 3600))
    assert hook.statuses() == ["firing", "reminder"] and hook.posts[1]["alerts"][0]["since"] == "2026-03-02T03:00:00Z"
    ev.tick(later(T0, 3700))
    assert hook.statuses() == ["firing", "reminder"]
    ev.close()
