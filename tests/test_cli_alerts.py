"""`berth alert ...` and `berth alerts` on the built-in `local` server with a real agent, runner and
a webhook receiver on loopback: the exact JSON keys, exit codes, one clear line for each bad input
(nothing created), the audit on both sides, and the firing count in `berth status --json`."""
import json

import pytest

from agent_kit import make_bundle, scheduler_only_for_the_watchdog
from alerts_kit import Receiver, free_port
from app.agent import alerteval
from app.agent.layout import Root
from app.store.servers import ServerConfig
from app.workspace import Workspace
from cli_kit import berth
from jobs_kit import cleanup

RULE_KEYS = {"server", "name", "model", "when", "for", "repeat", "notify", "silenced_until"}
ALERT_KEYS = {"rule", "server", "model", "state", "since", "value", "notified"}


@pytest.fixture
def local(berth_home, capsys, tmp_path):
    assert berth(capsys, "deploy", make_bundle(tmp_path / "echo"), "--server", "local").code == 0
    yield berth_home / "local"
    cleanup(berth_home / "local")


@pytest.fixture
def hook():
    r = Receiver()
    yield r
    r.stop()


def test_alert_commands_their_json_and_the_audit(local, capsys, hook):
    r = berth(capsys, "alert", "add", "disk", "--server", "local", "--when", "disk_free_pct<100", "--for", "0",
              "--notify", f"webhook:{hook.url}")
    assert r.code == 0, r
    assert r.out.strip() == f"alert disk added on local: disk_free_pct<100 for 0s -> webhook:{hook.url}"
    assert "local: evaluator running (pid " in r.err and "after a reboot: " in r.err
    r = berth(capsys, "alert", "add", "echo-down", "--server", "local", "--model", "echo", "--when", "down",
              "--for", "2m", "--notify", f"webhook:{hook.url}", "--notify", "email:ops@example.com")
    assert r.code == 0, r
    listed = berth(capsys, "alert", "list", "--server", "local", "--json").json()
    assert [set(x) for x in listed] == [RULE_KEYS, RULE_KEYS]
    assert listed[1] == {"server": "local", "name": "echo-down", "model": "echo", "when": "down", "for": "2m",
                         "repeat": "4h", "notify": [f"webhook:{hook.url}", "email:ops@example.com"],
                         "silenced_until": None}
    assert "echo-down" in berth(capsys, "alert", "list").out  # every server, as a table

    ev = alerteval.Evaluator(Root(str(local)))  # a round now rather than waiting for the process's
    ev.tick()
    ev.close()
    firing = berth(capsys, "alerts", "--server", "local", "--json").json()
    assert [set(a) for a in firing] == [ALERT_KEYS]
    assert (firing[0]["rule"], firing[0]["server"], firing[0]["model"], firing[0]["state"]) == (
        "disk", "local", None, "firing")
    [note] = firing[0]["notified"]
    assert note["channel"] == f"webhook:{hook.url}" and note["ok"] is True and note["at"]
    assert "disk" in berth(capsys, "alerts").out and "FIRING" in berth(capsys, "alerts").out
    status = berth(capsys, "status", "--server", "local", "--json").json()
    assert status[0]["alerts_firing"] == 1

    r = berth(capsys, "alert", "test", "echo-down", "--server", "local")
    assert r.code == 1, r  # e-mail: this agent has no sender for it yet, and says so
    assert f"local: webhook:{hook.url}: ok HTTP 200: thanks" in r.out and "email:ops@example.com: FAILED" in r.out
    assert hook.posts[-1]["status"] == "test" and hook.posts[-1]["alerts"][0]["rule"] == "echo-down"
    r = berth(capsys, "alert", "test", "disk", "--server", "local")
    assert r.code == 0 and r.out.count("ok HTTP 200") == 1, r
    hook.status = 503
    assert berth(capsys, "alert", "test", "disk", "--server", "local").code == 1

    r = berth(capsys, "alert", "silence", "disk", "--server", "local", "--for", "2h", "--reason", "disk swap")
    assert r.code == 0 and r.out.startswith("alert disk on local: silenced until "), r
    assert berth(capsys, "alert", "list", "--server", "local", "--json").json()[0]["silenced_until"]
    r = berth(capsys, "alert", "silence", "disk", "--server", "local", "--for", "2h", "--reason", " ")
    assert r.code == 1 and r.err.strip() == "berth: a silence needs a reason (--reason TEXT, at most 500 characters)"
    r = berth(capsys, "alert", "silence", "disk", "--server", "local", "--for", "2h", "--reason", "two\nlines")
    assert r.code == 1 and "must be one line of text" in r.err, r  # refused before connecting: nothing audited
    r = berth(capsys, "alert", "remove", "diks", "--server", "local")
    assert r.code == 1 and r.err.strip() == "berth: there is no alert diks on local; did you mean disk?"
    for name in ("disk", "echo-down"):
        assert berth(capsys, "alert", "remove", name, "--server", "local").code == 0
    assert berth(capsys, "alert", "list", "--server", "local", "--json").json() == []
    assert scheduler_only_for_the_watchdog(local)

    events = berth(capsys, "audit", "list", "--json").json()
    trail = [(e["action"], e["outcome"]) for e in reversed(events) if e["action"].startswith("alert.")]
    assert trail == [("alert.add", "started"), ("alert.add", "ok"), ("alert.add", "started"), ("alert.add", "ok"),
                     ("alert.silence", "started"), ("alert.silence", "ok"), ("alert.remove", "started"),
                     ("alert.remove", "ok"), ("alert.remove", "started"), ("alert.remove", "ok")]
    silence = next(e for e in events if e["action"] == "alert.silence" and e["outcome"] == "ok")
    assert silence["reason"] == "disk swap" and "silenced until" in silence["detail"] and silence["server"] == "local"
    journal = [json.loads(line) for line in (local / "journal.jsonl").read_text().splitlines()]
    assert [(e["action"], e["outcome"], e.get("alert")) for e in journal if e["action"] == "alert.silence"] == [
        ("alert.silence", "started", "disk"), ("alert.silence", "ok", "disk")]


BAD = [
    ("expr", ["--when", "p99_ms>5"], "--when 'p99_ms>5' is not a rule; allowed: down, error_rate>R (0..1)"),
    ("duration", ["--for", "5 min"], "--for '5 min' is not a duration"),
    ("repeat", ["--repeat", "10s"], "--repeat '10s' must be from 1m to 30d"),
    ("notify", ["--notify", "pager:42"], "--notify 'pager:42': write webhook:URL, email:ADDRESS or alertmanager:URL"),
    ("email", ["--notify", "email:not-an-address"], "is not an e-mail address"),
    ("model absent", ["--model", "ecoh"], "ecoh is not deployed on this server (deployed there: echo)"),
    ("name", ["--name", "Bad_Name"], "invalid alert name 'Bad_Name'"),
]


@pytest.mark.parametrize("label,change,says", BAD, ids=[b[0] for b in BAD])
def test_bad_input_one_clear_line_nothing_created(local, capsys, label, change, says):
    args = {"--when": "down", "--for": "1m", "--repeat": "4h", "--notify": "webhook:http://127.0.0.1:9/x",
            "--name": "ok-name"}
    args.update(dict(zip(change[::2], change[1::2])))
    name = args.pop("--name")
    r = berth(capsys, "alert", "add", name, "--server", "local", *[x for kv in args.items() for x in kv])
    assert r.code == 1, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], r
    assert berth(capsys, "alert", "list", "--server", "local", "--json").json() == []
    assert not any(e["action"] == "alert.add" and e["outcome"] == "ok" for e in berth(capsys, "audit", "list", "--json").json())


def test_a_receiver_that_is_down_shows_in_berth_alerts(local, capsys):
    url = f"http://127.0.0.1:{free_port()}/hook"
    assert berth(capsys, "alert", "add", "disk", "--server", "local", "--when", "disk_free_pct<100",
                 "--notify", f"webhook:{url}").code == 0
    ev = alerteval.Evaluator(Root(str(local)))
    ev.tick()
    ev.close()
    [a] = berth(capsys, "alerts", "--server", "local", "--json").json()
    [note] = a["notified"]
    assert note["ok"] is False and note["channel"] == f"webhook:{url}" and note["answer"].startswith("unreachable")
    assert "FAILED: unreachable" in berth(capsys, "alerts", "--server", "local").out


def test_unknown_server_and_production_reason(berth_home, capsys):
    r = berth(capsys, "alert", "add", "disk", "--server", "nope", "--when", "down", "--notify", "webhook:http://h/x")
    assert r.code == 1 and r.err.strip().startswith("berth: no server named 'nope'")
    ws = Workspace()
    ws.servers.save(ServerConfig(name="prod1", kind="ssh", host="127.0.0.1", port=9, user="u", root="/srv",
                                 environment="production"))
    ws.set_setting("require_reason_production", "true")
    ws.close()
    for argv in (["add", "disk", "--server", "prod1", "--when", "down", "--notify", "webhook:http://h/x"],
                 ["remove", "disk", "--server", "prod1"]):
        r = berth(capsys, "alert", *argv)
        assert r.code == 1 and r.err.strip().startswith("berth: prod1 is a production server: give a reason"), r
