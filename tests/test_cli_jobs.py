"""`berth job ...` on the built-in `local` server with a real agent, model and SQLite output: the
exact JSON keys, exit codes, one clear line for each bad input, and the audit on both sides."""
import pytest

from agent_kit import make_bundle
from cli_kit import berth
from jobs_kit import cleanup, BATCH_MODEL, rows, write_csv

LIST_KEYS = {"server", "name", "model", "version", "schedule", "tz", "next_run", "last_run", "last_state", "paused"}
RUN_KEYS = {"run_id", "started", "ended", "state", "rows_in", "rows_out", "errors", "version", "late"}


@pytest.fixture
def local(berth_home, capsys, tmp_path):
    folder = make_bundle(tmp_path / "scorer", name="scorer", model_src=BATCH_MODEL.format(version="1.0.0"))
    r = berth(capsys, "deploy", folder, "--server", "local")
    assert r.code == 0, r
    yield berth_home / "local"
    cleanup(berth_home / "local")


def add(capsys, tmp_path, *extra, name="hourly"):
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    base = ["job", "add", name, "--model", "scorer", "--server", "local", "--every", "1d", "--input-dir", inbox,
            "--pattern", "*.csv", "--output", f"sqlite:///{tmp_path}/out.db", "--table", "scores"]
    return berth(capsys, *base, *extra)


def test_job_commands_and_their_json(local, capsys, tmp_path):
    r = add(capsys, tmp_path)
    assert r.code == 0, r
    assert r.out.startswith("job hourly added on local: scorer every 1d (UTC), next run ") and "scheduler running (pid" in r.err
    listed = berth(capsys, "job", "list", "--server", "local", "--json").json()
    assert len(listed) == 1 and set(listed[0]) == LIST_KEYS
    assert {k: listed[0][k] for k in ("server", "name", "model", "version", "schedule", "tz", "paused", "last_run")} == {
        "server": "local", "name": "hourly", "model": "scorer", "version": None, "schedule": "every 1d", "tz": "UTC",
        "paused": False, "last_run": None}
    r = berth(capsys, "job", "list")  # every server, as a table
    assert "hourly" in r.out and "local: scheduler running (pid " in r.err and "after a reboot: " in r.err

    write_csv(tmp_path / "inbox" / "a.csv", [{"x": 1}, {"x": -1}, {"x": 3}])
    r = berth(capsys, "job", "run", "hourly", "--server", "local", "--wait")
    assert r.code == 0, r
    assert ": ok, 3 in, 2 out, 1 error(s)" in r.out
    runs = berth(capsys, "job", "runs", "hourly", "--server", "local", "--json").json()
    assert len(runs) == 1 and set(runs[0]) == RUN_KEYS
    assert (runs[0]["state"], runs[0]["rows_out"], runs[0]["errors"], runs[0]["version"], runs[0]["late"]) == (
        "ok", 2, 1, "1.0.0", False)
    assert rows(tmp_path / "out.db", "SELECT count(*) FROM scores") == [(2,)]
    r = berth(capsys, "job", "run", "hourly", "--server", "local")
    assert r.code == 0 and len(r.out.strip()) == len(runs[0]["run_id"])  # the run id, for scripts

    for action, said in (("pause", "paused"), ("resume", "resumed")):
        r = berth(capsys, "job", action, "hourly", "--server", "local")
        assert r.code == 0 and r.out.strip() == f"job hourly on local: {said}", r
    r = berth(capsys, "job", "pause", "hourlyy", "--server", "local")
    assert r.code == 1 and r.err.strip() == "berth: there is no job hourlyy on local; did you mean hourly?"

    (tmp_path / "out.db").write_bytes(b"no longer sqlite" * 64)
    r = berth(capsys, "job", "run", "hourly", "--server", "local", "--wait")
    assert r.code == 1 and ": failed, 0 in" in r.out and "not a SQLite database" in r.out, r
    status = berth(capsys, "status", "--server", "local", "--json").json()
    assert status[0]["jobs"] == [{"name": "hourly", "state": "failing"}]
    table = berth(capsys, "status", "--server", "local").out
    assert "hourly FAILING" in table
    assert "FAILING" in berth(capsys, "job", "list", "--server", "local").out

    assert berth(capsys, "job", "remove", "hourly", "--server", "local").code == 0
    assert berth(capsys, "job", "list", "--server", "local", "--json").json() == []

    events = berth(capsys, "audit", "list", "--json").json()
    jobs = [(e["action"], e["outcome"]) for e in reversed(events) if e["action"].startswith("job.")]
    assert jobs == [("job.add", "started"), ("job.add", "ok"), ("job.run", "started"), ("job.run", "ok"),
                    ("job.run", "started"), ("job.run", "ok"), ("job.pause", "started"), ("job.pause", "ok"),
                    ("job.resume", "started"), ("job.resume", "ok"), ("job.run", "started"), ("job.run", "ok"),
                    ("job.remove", "started"), ("job.remove", "ok")]  # the server journal's copies were not added
    assert all(e["model"] == "scorer" and e["server"] == "local" for e in events if e["action"].startswith("job."))
    assert any("job hourly: removed" in e["detail"] for e in events if e["action"] == "job.remove")


BAD = [
    ("unknown model", ["--model", "scorr"], 1, "scorr is not deployed on this server (deployed there: scorer); did you mean scorer?", ""),
    ("schedule", ["--every", "10 minutes"], 1, "the schedule does not parse: --every: '10 minutes' is not an interval", ""),
    ("missing input dir", ["--input-dir", "/nonexistent/inbox"], 1,
     "the input folder /nonexistent/inbox does not exist on the server", ""),
    ("relative input dir", ["--input-dir", "inbox"], 1, "give the folder's absolute path on the server", ""),
    ("bad table", ["--table", "my-table"], 1, "table 'my-table' is not a plain identifier", ""),
    ("unreachable output", ["--output", "sqlite:////nonexistent/dir/out.db"], 1,
     "the output's folder /nonexistent/dir does not exist on the server", ""),
    ("output url", ["--output", "mysql://x"], 1, "expected sqlite:///ABSOLUTE/PATH.db", ""),
    ("version absent", ["--version", "9.9.9"], 1, "scorer has no release 9.9.9", ""),
]


@pytest.mark.parametrize("label,change,code,says,also", BAD, ids=[b[0] for b in BAD])
def test_bad_input_one_clear_line(local, capsys, tmp_path, label, change, code, says, also):
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    args = {"--model": "scorer", "--every": "1h", "--input-dir": str(inbox), "--output": f"sqlite:///{tmp_path}/o.db",
            "--table": "scores"}
    args.update(dict(zip(change[::2], change[1::2])))
    r = berth(capsys, "job", "add", "hourly", "--server", "local", "--pattern", "*.csv",
              *[x for kv in args.items() for x in kv])
    assert r.code == code, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and also in lines[0], r
    assert berth(capsys, "job", "list", "--server", "local", "--json").json() == []


@pytest.mark.parametrize("argv", [
    ["--every", "1h", "--cron", "0 * * * *", "--input-dir", "/tmp"],
    ["--every", "1h", "--input-db", "sqlite:////tmp/x.db"],
    ["--every", "1h", "--input-dir", "/tmp", "--watermark", "at"],
    ["--input-dir", "/tmp"],
    ["--every", "1h"],
], ids=["every-and-cron", "db-without-sql", "watermark-with-dir", "no-schedule", "no-input"])
def test_wrong_usage_exits_2(local, capsys, argv):
    assert berth(capsys, "job", "runs", "j", "--server", "local", "--limit", "0").code == 2
    r = berth(capsys, "job", "add", "j", "--model", "scorer", "--server", "local", "--output", "sqlite:////tmp/o.db",
              "--table", "t", *argv)
    assert r.code == 2, r


def test_a_cron_job_in_a_time_zone_is_listed_with_its_next_local_run(local, capsys, tmp_path):
    """The real schedule behind the CLI: a cron expression in Europe/Vienna, next_run in UTC."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    r = add(capsys, tmp_path, "--cron", "30 2 * * *", "--tz", "Europe/Vienna", name="nightly")
    assert r.code == 2 and "--every" in r.err, r  # --every 1d is in add()'s base: one schedule only
    inbox = tmp_path / "inbox"
    r = berth(capsys, "job", "add", "nightly", "--model", "scorer", "--server", "local", "--cron", "30 2 * * *",
              "--tz", "Europe/Vienna", "--input-dir", inbox, "--output", f"sqlite:///{tmp_path}/out.db",
              "--table", "scores")
    assert r.code == 0, r
    job = berth(capsys, "job", "list", "--server", "local", "--json").json()[0]
    assert job["schedule"] == "cron '30 2 * * *' (Europe/Vienna)" and job["tz"] == "Europe/Vienna"
    nxt = dt.datetime.fromisoformat(job["next_run"].replace("Z", "+00:00")).astimezone(ZoneInfo("Europe/Vienna"))
    assert (nxt.hour, nxt.minute) == (2, 30) and nxt - dt.datetime.now(dt.timezone.utc) <= dt.timedelta(days=1)
    r = berth(capsys, "job", "add", "bad", "--model", "scorer", "--server", "local", "--cron", "30 25 * * *",
              "--input-dir", inbox, "--output", f"sqlite:///{tmp_path}/out.db", "--table", "scores")
    assert r.code == 1 and "hour" in r.err and "25" in r.err and r.err.count("\n") == 1, r
    r = berth(capsys, "job", "add", "bad", "--model", "scorer", "--server", "local", "--every", "1h", "--tz",
              "Mars/Olympus", "--input-dir", inbox, "--output", f"sqlite:///{tmp_path}/out.db", "--table", "scores")
    assert r.code == 1 and "Mars/Olympus" in r.err, r


def test_edit_and_preview(local, capsys, tmp_path):
    assert add(capsys, tmp_path).code == 0
    r = berth(capsys, "job", "edit", "hourly", "--server", "local", "--cron", "*/15 * * * *", "--tz", "Europe/Vienna",
              "--pattern", "*.jsonl", "--version", "1.0.0", "--reason", "CHG-1")
    assert r.code == 0, r
    assert r.out.startswith("job hourly on local edited: cron '*/15 * * * *' (Europe/Vienna), version 1.0.0, "
                            "pattern *.jsonl, next run "), r
    job = berth(capsys, "job", "list", "--server", "local", "--json").json()[0]
    assert (job["schedule"], job["tz"], job["version"]) == ("cron '*/15 * * * *' (Europe/Vienna)", "Europe/Vienna",
                                                            "1.0.0")
    r = berth(capsys, "job", "edit", "hourly", "--server", "local", "--follow-current")
    assert r.code == 0 and "version current" in r.out, r

    (tmp_path / "inbox" / "a.jsonl").write_text('{"x": 4}\n{"x": -4}\n')
    assert berth(capsys, "job", "run", "hourly", "--server", "local", "--wait").code == 0
    shown = berth(capsys, "job", "preview", "hourly", "--server", "local", "--json").json()
    assert shown["columns"][:4] == ["run_id", "model_version", "input_ref", "time"]
    assert [row[2:3] + row[4:5] for row in shown["rows"]] == [["a.jsonl:1", 8]]
    assert [row[2] for row in shown["errors"]["rows"]] == ["a.jsonl:2"]
    table = berth(capsys, "job", "preview", "hourly", "--server", "local").out
    assert table.startswith("results (newest first):\nRUN_ID") and "errors (newest first):" in table
    assert "x must not be negative" in table

    events = berth(capsys, "audit", "list", "--json").json()
    edits = [(e["outcome"], e["reason"]) for e in reversed(events) if e["action"] == "job.edit"]
    assert edits == [("started", "CHG-1"), ("ok", "CHG-1"), ("started", ""), ("ok", "")]
    assert not any(e["action"] == "job.preview" for e in events)  # a query, not a change


EDIT_BAD = [
    ("nothing", [], 2, "give what to change"),
    ("every and cron", ["--every", "1h", "--cron", "0 * * * *"], 2, "not allowed with"),
    ("version and follow", ["--version", "1.0.0", "--follow-current"], 2, "not allowed with"),
    ("cron", ["--cron", "0 25 * * *"], 1, "the schedule does not parse: "),
    ("zone", ["--tz", "Mars/Olympus"], 1, "Mars/Olympus"),
    ("version absent", ["--version", "9.9.9"], 1, "scorer has no release 9.9.9"),
    ("pattern", ["--pattern", "a/b"], 1, "must be a file name pattern"),
    ("no such job", ["--tz", "UTC", "--name-is", "hourlyy"], 1, "there is no job hourlyy on local; did you mean hourly?"),
]


@pytest.mark.parametrize("label,argv,code,says", EDIT_BAD, ids=[b[0] for b in EDIT_BAD])
def test_a_bad_edit_is_one_line_and_changes_nothing(local, capsys, tmp_path, label, argv, code, says):
    assert add(capsys, tmp_path).code == 0
    before = berth(capsys, "job", "list", "--server", "local", "--json").json()
    name = "hourly"
    if "--name-is" in argv:
        name = argv[argv.index("--name-is") + 1]
        argv = argv[:argv.index("--name-is")]
    r = berth(capsys, "job", "edit", name, "--server", "local", *argv)
    assert r.code == code, r
    assert says in r.err and (code == 2 or len(r.err.strip().splitlines()) == 1), r
    assert berth(capsys, "job", "list", "--server", "local", "--json").json() == before
