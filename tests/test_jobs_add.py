"""job_add refuses each bad input with one clear line and writes nothing; the changes are
journalled like a deploy; job_list's JOB keys."""
import os

import pytest

from agent_kit import call, scheduler_only_for_the_watchdog
from jobs_kit import cleanup, add_dir_job, deploy_batch_model, journal_actions

JOB_KEYS = {"name", "model", "version", "schedule", "tz", "next_run", "last_run", "last_state", "last_run_id",
            "paused", "input", "output", "late", "failing"}


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "srv"
    yield r
    cleanup(r)


@pytest.fixture
def deployed(root, tmp_path):
    deploy_batch_model(root, tmp_path)
    return root


def _good(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    return dict(name="nightly", model="scorer", schedule={"every": "1d"}, tz="UTC",
                input={"kind": "dir", "path": str(inbox), "pattern": "*.csv"},
                output={"url": f"sqlite:///{tmp_path}/out.db", "table": "scores"}, version=None)


BAD = [
    ("unknown model", {"model": "scorr"}, "not_deployed", "scorr is not deployed on this server"),
    ("bad model name", {"model": "Bad Name"}, "usage", "invalid model name"),
    ("pinned version absent", {"version": "9.9.9"}, "no_release", "scorer has no release 9.9.9"),
    ("schedule does not parse", {"schedule": {"every": "10 minutes"}}, "bad_schedule", "--every: '10 minutes' is not an interval"),
    ("no schedule", {"schedule": {}}, "bad_schedule", "give exactly one of --every and --cron"),
    ("missing input dir", {"input": {"kind": "dir", "path": "/nonexistent/inbox"}}, "bad_input",
     "the input folder /nonexistent/inbox does not exist on the server"),
    ("relative input dir", {"input": {"kind": "dir", "path": "inbox"}}, "bad_input", "absolute path"),
    ("unknown input kind", {"input": {"kind": "s3"}}, "bad_input", "input kind 's3'"),
    ("source db missing", {"input": {"kind": "db", "url": "sqlite:////nonexistent/src.db", "sql": "SELECT 1 AS t",
                                     "watermark": "t"}}, "bad_input", "does not exist on the server"),
    ("two statements", {"input": {"kind": "db", "url": "sqlite:////tmp/x.db", "sql": "SELECT 1; DROP TABLE x",
                                  "watermark": "t"}}, "bad_input", "one SELECT statement"),
    ("bad table name", {"output": {"url": "sqlite:////tmp/out.db", "table": "scores; DROP"}}, "bad_table",
     "is not a plain identifier"),
    ("reserved table name", {"output": {"url": "sqlite:////tmp/out.db", "table": "berth_job_done"}}, "bad_table",
     "is not a plain identifier"),
    ("unreachable output", {"output": {"url": "sqlite:////nonexistent/dir/out.db", "table": "scores"}}, "bad_output",
     "the output's folder /nonexistent/dir does not exist on the server"),
    ("relative output", {"output": {"url": "sqlite://out.db", "table": "scores"}}, "bad_output",
     "expected sqlite:///ABSOLUTE/PATH.db"),
    ("postgresql url with a password", {"output": {"url": "postgresql://u:hunter2@h:5432/db", "table": "scores"}},
     "password_in_url", "output has a password inside it: give the URL without it (postgresql://u@h:5432/db)"),
    ("postgresql url without a user", {"output": {"url": "postgresql://h:5432/db", "table": "scores"}},
     "bad_output", "the user is missing"),
    ("postgresql source with options", {"input": {"kind": "db", "url": "postgresql://u@h/db?sslmode=disable",
                                                  "sql": "SELECT 1 AS t", "watermark": "t"}}, "bad_input", "no ?options"),
    ("bad job name", {"name": "Nightly Job"}, "usage", "invalid job name"),
]


@pytest.mark.parametrize("label,change,code,says", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_clear_line_and_nothing_is_created(deployed, tmp_path, label, change, code, says):
    before = journal_actions(deployed)
    _result, error, _ = call(deployed, "job_add", **dict(_good(tmp_path), **change))
    assert error is not None and error["code"] == code, error
    assert says in error["message"] and "\n" not in error["message"], error["message"]
    assert not (deployed / "jobs").exists() or os.listdir(deployed / "jobs") == []
    assert journal_actions(deployed) == before
    assert not (tmp_path / "out.db").exists()
    assert scheduler_only_for_the_watchdog(deployed)


def test_a_corrupt_output_file_is_refused(deployed, tmp_path):
    (tmp_path / "out.db").write_bytes(b"this is not sqlite" * 100)
    _r, error, _ = call(deployed, "job_add", **_good(tmp_path))
    assert error["code"] == "bad_output" and "is not a SQLite database" in error["message"]


def test_watermark_column_must_be_in_the_query(deployed, tmp_path):
    import sqlite3
    src = tmp_path / "src.db"
    sqlite3.connect(src).execute("CREATE TABLE t (id INTEGER, at INTEGER)").connection.commit()
    _r, error, _ = call(deployed, "job_add", **dict(_good(tmp_path), input={
        "kind": "db", "url": f"sqlite:///{src}", "sql": "SELECT id FROM t", "watermark": "at"}))
    assert error["code"] == "bad_input" and "has no column at (it returns id)" in error["message"]
    _r, error, _ = call(deployed, "job_add", **dict(_good(tmp_path), input={
        "kind": "db", "url": f"sqlite:///{src}", "sql": "SELECT nope FROM t", "watermark": "at"}))
    assert error["code"] == "bad_input" and "the input query fails" in error["message"]


def test_names_are_unique_per_server_and_changes_are_journalled(deployed, tmp_path):
    result, error, _ = add_dir_job(deployed, tmp_path / "inbox", tmp_path / "out.db", name="hourly")
    assert error is None, error
    assert set(result["job"]) == JOB_KEYS
    assert result["scheduler"]["pid"] and result["scheduler"]["reboot"] in ("systemd", "crontab", "none")
    _r, error, _ = add_dir_job(deployed, tmp_path / "inbox2", tmp_path / "out2.db", name="hourly")
    assert error["code"] == "job_exists" and "already exists on this server (for scorer)" in error["message"]
    listed, _, _ = call(deployed, "job_list")
    assert [j["name"] for j in listed["jobs"]] == ["hourly"] and set(listed["jobs"][0]) == JOB_KEYS
    j = listed["jobs"][0]
    assert (j["version"], j["schedule"], j["tz"], j["paused"], j["last_run"], j["late"], j["failing"]) == (
        None, "every 1h", "UTC", False, None, False, False)
    assert call(deployed, "job_list", model="other")[0]["jobs"] == []
    assert call(deployed, "job_pause", name="hourly")[0]["job"]["paused"] is True
    assert call(deployed, "job_list")[0]["jobs"][0]["next_run"] is None
    assert call(deployed, "job_resume", name="hourly")[0]["job"]["paused"] is False
    removed = call(deployed, "job_remove", name="hourly")[0]
    assert removed["removed"] == "hourly" and removed["detail"].startswith("job hourly: removed")
    _r, error, _ = call(deployed, "job_pause", name="hourly")
    assert error["code"] == "no_job" and "there is no job hourly on this server" in error["message"]
    jobs = [a for a in journal_actions(deployed) if a[0].startswith("job.")]
    assert jobs == [("job.add", "started"), ("job.add", "ok"), ("job.add", "started"), ("job.add", "failed"),
                    ("job.pause", "started"), ("job.pause", "ok"), ("job.resume", "started"), ("job.resume", "ok"),
                    ("job.remove", "started"), ("job.remove", "ok")]
    assert scheduler_only_for_the_watchdog(deployed)  # the last job gone: only the running model keeps it


def test_a_release_a_job_is_pinned_to_is_never_pruned(root, tmp_path):
    """A deploy keeps the newest `keep` releases; one a job is pinned to stays too, or every run of
    that job would fail with "no release" after the next deploys."""
    from agent_kit import deploy_request, make_bundle
    from jobs_kit import BATCH_MODEL

    deploy_batch_model(root, tmp_path, "1.0.0")
    _, error = add_dir_job(root, tmp_path / "inbox", tmp_path / "out.db", version="1.0.0")[:2]
    assert error is None, error
    for v in ("2.0.0", "3.0.0", "4.0.0"):
        folder = make_bundle(tmp_path / f"b-{v}", name="scorer", version=v, model_src=BATCH_MODEL.format(version=v))
        result, error, _ = call(root, "deploy", **dict(deploy_request(root, folder), keep=1))
        assert error is None, error
    versions = [r["version"] for r in call(root, "releases", model="scorer")[0]["releases"]]
    assert "1.0.0" in versions and "2.0.0" not in versions, versions
    assert set(versions) == {"1.0.0", "3.0.0", "4.0.0"}  # pinned, previous, current


def _refused(root, tmp_path, code, says, **change):
    before = journal_actions(root)
    _r, error, _ = call(root, "job_add", **dict(_good(tmp_path), **change))
    assert error is not None and error["code"] == code, error
    assert says in error["message"] and "\n" not in error["message"], error["message"]
    assert not (root / "jobs").exists() or os.listdir(root / "jobs") == []
    assert journal_actions(root) == before
    return error


@pytest.mark.parametrize("where", [".berth", "", "models"])
def test_an_input_folder_inside_berths_root_is_refused(deployed, tmp_path, where):
    """Its files would be moved to done/: the journal, the agent's state."""
    folder = deployed / where if where else deployed
    _refused(deployed, tmp_path, "bad_input", "is inside Berth's own folder",
             input={"kind": "dir", "path": str(folder), "pattern": "*"})
    assert (deployed / "journal.jsonl").exists()


def test_an_input_folder_symlinked_into_berths_root_is_refused(deployed, tmp_path):
    link = tmp_path / "inbox-link"
    link.symlink_to(deployed / ".berth")
    _refused(deployed, tmp_path, "bad_input", "is inside Berth's own folder",
             input={"kind": "dir", "path": str(link), "pattern": "*"})


def test_an_output_inside_berths_root_is_refused_also_through_a_symlink(deployed, tmp_path):
    _refused(deployed, tmp_path, "bad_output", "is inside Berth's own folder",
             output={"url": f"sqlite:///{deployed}/.berth/out.db", "table": "scores"})
    assert not (deployed / ".berth" / "out.db").exists()
    (tmp_path / "out.db").symlink_to(deployed / "models" / "state.db")
    _refused(deployed, tmp_path, "bad_output", "is inside Berth's own folder",
             output={"url": f"sqlite:///{tmp_path}/out.db", "table": "scores"})
    assert not (deployed / "models" / "state.db").exists()


def test_an_output_in_the_input_folder_is_refused(deployed, tmp_path):
    """A run would take the database (pattern *) for an input file and move it to failed/."""
    _refused(deployed, tmp_path, "bad_output", "is in the input folder",
             output={"url": f"sqlite:///{tmp_path}/inbox/out.db", "table": "scores"})


def _source(tmp_path):
    import sqlite3
    src = tmp_path / "src.db"
    conn = sqlite3.connect(src)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER)")
    conn.executemany("INSERT INTO t (x) VALUES (?)", [(1,), (2,)])
    conn.commit()
    conn.close()
    return src


ESCAPES = [
    # each would leave the first part, or all, outside `SELECT * FROM (query) WHERE id > ?`: every run takes it again
    ("a parenthesis of its own", "SELECT id, x FROM t) UNION ALL SELECT * FROM (SELECT id, x FROM t",
     "parentheses do not match"),
    ("a comment left open", "SELECT id, x FROM t) /*", "not closed"),
    ("a string left open", "SELECT id, x, ')' || ' AS p FROM t", "not closed"),
    ("a statement after it", "SELECT id, x FROM t; ATTACH DATABASE '/tmp/x.db' AS x", "one SELECT statement"),
    ("a pragma", "PRAGMA table_info(t)", "one SELECT statement"),
]


@pytest.mark.parametrize("label,sql,says", ESCAPES, ids=[e[0] for e in ESCAPES])
def test_a_source_query_that_escapes_its_parentheses_is_refused(deployed, tmp_path, label, sql, says):
    _refused(deployed, tmp_path, "bad_input", says,
             input={"kind": "db", "url": f"sqlite:///{_source(tmp_path)}", "sql": sql, "watermark": "id"})


def test_a_source_query_may_end_in_a_comment_and_hold_quoted_brackets(deployed, tmp_path):
    sql = "SELECT id, x, ')' AS p, ';' AS s FROM t -- the newest come last"
    _r, error, _ = call(deployed, "job_add", **dict(_good(tmp_path), input={
        "kind": "db", "url": f"sqlite:///{_source(tmp_path)}", "sql": sql, "watermark": "id"}))
    assert error is None, error
