"""job_edit (the schedule, zone, pattern or pinned version changed in place, refused like job_add
with nothing changed, journalled as job.edit) and job_preview (the output's latest rows, read-only),
on a real agent root with a deployed model, a real run and a real SQLite output."""
import json
import sqlite3

import pytest

from agent_kit import call, deploy_request, make_bundle
from jobs_kit import BATCH_MODEL, add_dir_job, cleanup, deploy_batch_model, journal_actions, wait_run, write_csv


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "srv"
    yield r
    cleanup(r)


@pytest.fixture
def job(root, tmp_path):
    deploy_batch_model(root, tmp_path)
    _r, error, _ = add_dir_job(root, tmp_path / "inbox", tmp_path / "out.db", every="1d")
    assert error is None, error
    return root


def definition(root):
    return json.loads((root / "jobs" / "hourly" / "job.json").read_text())


BAD = [
    ("cron does not parse", {"schedule": {"cron": "61 * * * *"}}, "bad_schedule", "minute"),
    ("interval does not parse", {"schedule": {"every": "10 minutes"}}, "bad_schedule", "is not an interval"),
    ("both every and cron", {"schedule": {"every": "1h", "cron": "0 * * * *"}}, "bad_schedule", "exactly one"),
    ("unknown zone", {"tz": "Mars/Olympus"}, "bad_schedule", "Mars/Olympus"),
    ("pattern with a slash", {"pattern": "../*.csv"}, "bad_input", "must be a file name pattern"),
    ("version absent", {"version": "9.9.9"}, "no_release", "scorer has no release 9.9.9"),
    ("bad version", {"version": "not a version!"}, "usage", "version"),
    ("version and follow_current", {"version": "1.0.0", "follow_current": True}, "usage", "not both"),
    ("nothing to change", {}, "usage", "nothing to change"),
    ("output is not an edit", {"output": {"url": "sqlite:////tmp/o.db", "table": "t"}}, "not_editable",
     "remove the job and add it again"),
    ("input is not an edit", {"input": {"kind": "dir", "path": "/tmp"}}, "not_editable", "remove the job"),
    ("model is not an edit", {"model": "other"}, "not_editable", "model"),
    ("no such job", {"name": "nope", "tz": "UTC"}, "no_job", "there is no job nope"),
]


@pytest.mark.parametrize("label,change,code,says", BAD, ids=[b[0] for b in BAD])
def test_a_refused_edit_is_one_line_and_changes_nothing(job, label, change, code, says):
    before, state_before = definition(job), (job / "jobs" / "hourly" / "state.json").read_text()
    journal_before = journal_actions(job)
    _r, error, _ = call(job, "job_edit", **dict({"name": "hourly"}, **change))
    assert error is not None and error["code"] == code, error
    assert says in error["message"] and "\n" not in error["message"], error["message"]
    assert definition(job) == before
    assert (job / "jobs" / "hourly" / "state.json").read_text() == state_before
    assert journal_actions(job) == journal_before


def test_pattern_of_a_query_job_is_refused(root, tmp_path):
    deploy_batch_model(root, tmp_path)
    src = tmp_path / "src.db"
    conn = sqlite3.connect(src)
    conn.execute("CREATE TABLE t (id INTEGER, x INTEGER)")
    conn.commit()
    conn.close()
    _r, error, _ = call(root, "job_add", name="q", model="scorer", schedule={"every": "1d"}, tz="UTC",
                        input={"kind": "db", "url": f"sqlite:///{src}", "sql": "SELECT id, x FROM t",
                               "watermark": "id"},
                        output={"url": f"sqlite:///{tmp_path}/out.db", "table": "scores"}, version=None)
    assert error is None, error
    _r, error, _ = call(root, "job_edit", name="q", pattern="*.csv")
    assert error["code"] == "bad_input" and "this job reads a query" in error["message"]


def test_a_good_edit_is_seen_by_job_list_journalled_and_recomputes_the_next_run(job, tmp_path):
    next_before = call(job, "job_list")[0]["jobs"][0]["next_run"]
    result, error, _ = call(job, "job_edit", name="hourly", schedule={"cron": "*/5 * * * *"}, tz="Europe/Vienna",
                            pattern="*.jsonl", version="1.0.0")
    assert error is None, error
    assert result["detail"].startswith("job hourly: edited: cron '*/5 * * * *' (Europe/Vienna), version 1.0.0")
    listed = call(job, "job_list")[0]["jobs"][0]
    assert (listed["schedule"], listed["tz"], listed["version"], listed["input"]["pattern"]) == (
        "cron '*/5 * * * *' (Europe/Vienna)", "Europe/Vienna", "1.0.0", "*.jsonl")
    assert listed["next_run"] != next_before and listed["next_run"][14:16] in {"%02d" % m for m in range(0, 60, 5)}
    assert listed["output"] == {"url": f"sqlite:///{tmp_path}/out.db", "table": "scores"}  # untouched
    d = definition(job)
    assert d["edited_by"]["user"] and d["created"]
    lines = [json.loads(x) for x in (job / "journal.jsonl").read_text().splitlines()]
    edits = [x for x in lines if x["action"] == "job.edit"]
    assert [x["outcome"] for x in edits] == ["started", "ok"]
    assert edits[1]["job"] == "hourly" and "was every 1d" in edits[1]["detail"]

    result, error, _ = call(job, "job_edit", name="hourly", follow_current=True)
    assert error is None and result["job"]["version"] is None
    assert call(job, "job_list")[0]["jobs"][0]["tz"] == "Europe/Vienna"  # only what was asked changed


def test_an_edit_keeps_a_pause(job):
    call(job, "job_pause", name="hourly")
    result, error, _ = call(job, "job_edit", name="hourly", schedule={"every": "1h"})
    assert error is None and result["job"]["paused"] is True and result["job"]["next_run"] is None


def test_preview_reads_the_latest_rows_and_errors_read_only(job, tmp_path):
    out = tmp_path / "out.db"
    answer, error, _ = call(job, "job_preview", name="hourly")
    assert error is None, error
    assert answer == {"columns": [], "rows": [], "errors": {"columns": [], "rows": []}}
    assert not out.exists()  # a preview creates nothing

    write_csv(tmp_path / "inbox" / "a.csv", [{"x": 1}, {"x": -1}, {"x": 3}])
    run = wait_run(job, "hourly", call(job, "job_run", name="hourly")[0]["run"]["run_id"])
    assert run["state"] == "ok", run
    conn = sqlite3.connect(out)
    conn.execute("ALTER TABLE scores ADD COLUMN blob")
    conn.execute("INSERT INTO scores (run_id, blob) VALUES ('hand', x'00ff')")
    conn.commit()
    conn.close()
    answer, error, _ = call(job, "job_preview", name="hourly", limit=2)
    assert error is None, error
    assert answer["columns"] == ["run_id", "model_version", "input_ref", "time", "y", "label", "blob"]
    assert [r[0] for r in answer["rows"]] == ["hand", run["run_id"]]  # newest first, at most limit
    assert answer["rows"][0][-1] == "00ff"  # bytes as hex
    assert answer["rows"][1][2:3] == ["a.csv:4"] and answer["rows"][1][4] == 6
    assert answer["errors"]["columns"] == ["run_id", "model_version", "input_ref", "time", "reason", "raw"]
    assert [r[2] for r in answer["errors"]["rows"]] == ["a.csv:3"]
    assert "x must not be negative" in answer["errors"]["rows"][0][4]


@pytest.mark.parametrize("limit", [0, -1, 501, "5", True, 2.5])
def test_preview_refuses_a_bad_limit(job, limit):
    _r, error, _ = call(job, "job_preview", name="hourly", limit=limit)
    assert error["code"] == "usage" and "limit must be a whole number from 1 to 500" in error["message"]


def test_preview_of_a_file_that_is_not_sqlite_is_one_line(job, tmp_path):
    (tmp_path / "out.db").write_bytes(b"not sqlite at all" * 64)
    _r, error, _ = call(job, "job_preview", name="hourly")
    assert error["code"] == "bad_output" and "cannot be read as SQLite" in error["message"]


def test_preview_in_the_release_venv_gives_the_same_answer(job, tmp_path):
    """Another scheme than sqlite: is read by the release venv's python (the driver lives there);
    the same reader run there answers exactly as in the agent."""
    from app.agent import jobpreview
    from app.agent.layout import Root

    write_csv(tmp_path / "inbox" / "a.csv", [{"x": 1}, {"x": -2}])
    wait_run(job, "hourly", call(job, "job_run", name="hourly")[0]["run"]["run_id"])
    here = call(job, "job_preview", name="hourly")[0]
    there = jobpreview._in_venv(Root(str(job)), definition(job), "hourly", 20)
    assert there == here and len(here["rows"]) == 1 and len(here["errors"]["rows"]) == 1


def test_preview_of_another_scheme_goes_through_the_venv_and_fails_in_one_line(job):
    path = job / "jobs" / "hourly" / "job.json"
    d = definition(job)
    d["output"] = {"url": "postgresql://u@127.0.0.1:9/db", "table": "scores"}
    path.write_text(json.dumps(d))  # as a PostgreSQL job would be
    _r, error, _ = call(job, "job_preview", name="hourly")  # read in the venv, which has no driver
    assert error["code"] == "no_driver" and "psycopg" in error["message"] and "\n" not in error["message"], error


def test_pinned_version_edit_then_deploy_keeps_it(job, tmp_path):
    folder = make_bundle(tmp_path / "b2", name="scorer", version="2.0.0", model_src=BATCH_MODEL.format(version="2"))
    assert call(job, "deploy", **deploy_request(job, folder))[1] is None
    _r, error, _ = call(job, "job_edit", name="hourly", version="1.0.0")
    assert error is None, error
    write_csv(tmp_path / "inbox" / "a.csv", [{"x": 1}])
    run = wait_run(job, "hourly", call(job, "job_run", name="hourly")[0]["run"]["run_id"])
    assert run["version"] == "1.0.0"
