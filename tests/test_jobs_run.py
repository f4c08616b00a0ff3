"""A job's run on a real agent root with a deployed model and a real SQLite output: batches from an
inbox, bad rows in the errors table, exactly once across a SIGKILL, and a SQLite watermark source.
Jobs here run "every 1d" on the real clock, so no scheduled run joins the runs a test starts."""
import os
import signal
import sqlite3
import time

import pytest

from agent_kit import call
from jobs_kit import cleanup, add_dir_job, deploy_batch_model, rows, wait_run, write_csv


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "srv"
    yield r
    cleanup(r)


def test_three_batches_one_with_bad_rows_each_row_once(root, tmp_path):
    deploy_batch_model(root, tmp_path)
    inbox, out = tmp_path / "inbox", tmp_path / "out" / "results.db"
    out.parent.mkdir()
    result, error, _ = add_dir_job(root, inbox, out, every="1d")
    assert error is None, error
    write_csv(inbox / "a.csv", [{"x": 1}, {"x": 2}])
    write_csv(inbox / "b.csv", [{"x": 3}, {"x": -1}, {"x": 4}])
    (inbox / "c.csv").write_text("x\n5\n6,7\n8\n")  # a row with too many fields
    (inbox / "notes.txt").write_text("ignored: not *.csv")
    result, error, _ = call(root, "job_run", name="hourly")
    assert error is None, error
    run = wait_run(root, "hourly", result["run"]["run_id"])
    assert (run["state"], run["rows_in"], run["rows_out"], run["errors"]) == ("ok", 8, 6, 2), run
    assert 0 < run["seconds"] < 60 and 2_000 < run["peak_rss_kb"] < 500_000, run  # its own duration and memory
    assert sorted(rows(out, "SELECT x_in FROM (SELECT y / 2 AS x_in FROM scores)")) == [(1,), (2,), (3,), (4,), (5,), (8,)]
    assert rows(out, "SELECT DISTINCT run_id, model_version FROM scores") == [(run["run_id"], "1.0.0")]
    assert sorted(r[0] for r in rows(out, "SELECT input_ref FROM scores")) == [
        "a.csv:2", "a.csv:3", "b.csv:2", "b.csv:4", "c.csv:2", "c.csv:4"]
    errors = sorted(rows(out, "SELECT input_ref, reason, raw FROM scores_errors"))
    assert errors[0][:2] == ("b.csv:3", "ValueError: x must not be negative") and '"x": -1' in errors[0][2]
    assert errors[1][0] == "c.csv:3" and "2 fields" in errors[1][1] and errors[1][2] == "6,7"
    assert sorted(os.listdir(inbox / "done")) == ["a.csv", "b.csv", "c.csv"]
    assert sorted(os.listdir(inbox)) == ["done", "notes.txt"]

    # a file whose content was already committed (a run killed between commit and move) is only moved
    os.replace(inbox / "done" / "a.csv", inbox / "a.csv")
    result, _, _ = call(root, "job_run", name="hourly")
    again = wait_run(root, "hourly", result["run"]["run_id"])
    assert (again["state"], again["rows_in"], again["rows_out"]) == ("ok", 0, 0)
    assert rows(out, "SELECT count(*) FROM scores") == [(6,)]
    assert not (inbox / "a.csv").exists() and (inbox / "done" / "a.csv").exists()


def test_sigkill_in_the_middle_of_a_batch_then_again_each_good_row_once(root, tmp_path):
    deploy_batch_model(root, tmp_path)
    inbox, out = tmp_path / "inbox", tmp_path / "results.db"
    assert add_dir_job(root, inbox, out, every="1d")[1] is None
    write_csv(inbox / "1.csv", [{"x": i, "sleep": 0} for i in range(1, 4)])
    write_csv(inbox / "2.csv", [{"x": i, "sleep": 0.3} for i in range(10, 16)] + [{"x": -5, "sleep": 0}])
    write_csv(inbox / "3.csv", [{"x": i, "sleep": 0} for i in range(20, 23)] + [{"x": -6, "sleep": 0}])
    result, error, _ = call(root, "job_run", name="hourly")
    assert error is None, error
    pid = result["run"]["pid"]
    deadline = time.monotonic() + 90  # a loaded machine: the job process and its model take a while to start
    while not (inbox / "done" / "1.csv").exists():  # batch 1 committed: batch 2 (1.8 s of sleeps) is going
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.4)
    os.kill(pid, signal.SIGKILL)
    killed = wait_run(root, "hourly", result["run"]["run_id"])
    assert killed["state"] == "failed" and "ended before the run finished" in killed["detail"]
    assert rows(out, "SELECT count(*) FROM scores") == [(3,)]  # batch 2 left nothing behind
    assert (inbox / "2.csv").exists() and (inbox / "3.csv").exists()

    result, error, _ = call(root, "job_run", name="hourly")
    assert error is None, error
    run = wait_run(root, "hourly", result["run"]["run_id"])
    assert (run["state"], run["rows_out"], run["errors"]) == ("ok", 9, 2), run
    xs = sorted(r[0] // 2 for r in rows(out, "SELECT y FROM scores"))
    assert xs == [1, 2, 3, 10, 11, 12, 13, 14, 15, 20, 21, 22]  # each good row exactly once
    assert sorted(r[0] for r in rows(out, "SELECT input_ref FROM scores_errors")) == ["2.csv:8", "3.csv:5"]
    assert sorted(os.listdir(inbox / "done")) == ["1.csv", "2.csv", "3.csv"]


def test_sqlite_source_takes_only_rows_after_the_watermark(root, tmp_path):
    deploy_batch_model(root, tmp_path)
    src, out = tmp_path / "source.db", tmp_path / "results.db"
    conn = sqlite3.connect(src)
    conn.execute("CREATE TABLE readings (id INTEGER PRIMARY KEY, x REAL, at INTEGER)")
    conn.executemany("INSERT INTO readings (x, at) VALUES (?, ?)", [(1, 100), (2, 100), (-3, 101), (4, 102)])
    conn.commit()
    result, error, _ = call(root, "job_add", name="from-db", model="scorer", schedule={"every": "10m"}, tz="UTC",
                            input={"kind": "db", "url": f"sqlite:///{src}", "sql": "SELECT id, x, at FROM readings",
                                   "watermark": "at"},
                            output={"url": f"sqlite:///{out}", "table": "scores"}, version="1.0.0")
    assert error is None, error
    assert result["job"]["version"] == "1.0.0" and result["job"]["schedule"] == "every 10m"
    run = wait_run(root, "from-db", call(root, "job_run", name="from-db")[0]["run"]["run_id"])
    assert (run["state"], run["rows_in"], run["rows_out"], run["errors"]) == ("ok", 4, 3, 1), run
    assert rows(out, "SELECT value FROM berth_job_watermark WHERE job = 'from-db'") == [(102,)]
    conn.executemany("INSERT INTO readings (x, at) VALUES (?, ?)", [(5, 102), (6, 103), (7, 104)])
    conn.commit()
    conn.close()
    run = wait_run(root, "from-db", call(root, "job_run", name="from-db")[0]["run"]["run_id"])
    # at = 102 was committed: a row added later with the same watermark is not taken (documented)
    assert (run["state"], run["rows_in"], run["rows_out"]) == ("ok", 2, 2)
    assert sorted(r[0] for r in rows(out, "SELECT input_ref FROM scores")) == [
        "id=1,at=100", "id=2,at=100", "id=4,at=102", "id=6,at=103", "id=7,at=104"]
    assert rows(out, "SELECT input_ref FROM scores_errors") == [("id=3,at=101",)]


def test_run_now_from_two_session_threads_starts_one_run(root, tmp_path):
    """The session runs commands in threads: two `job_run` at once start one run, the other is refused."""
    import threading

    deploy_batch_model(root, tmp_path)
    inbox, out = tmp_path / "inbox", tmp_path / "results.db"
    assert add_dir_job(root, inbox, out, every="1d")[1] is None
    write_csv(inbox / "slow.csv", [{"x": 1, "sleep": 1.0}])
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(call(root, "job_run", name="hourly"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = [a[0]["run"] for a in answers if a[1] is None]
    refused = [a[1] for a in answers if a[1] is not None]
    assert len(started) == 1 and len(refused) == 1, answers
    assert refused[0]["code"] in ("busy", "locked") and "\n" not in refused[0]["message"]
    assert wait_run(root, "hourly", started[0]["run_id"])["rows_out"] == 1
    assert len(call(root, "job_runs", name="hourly")[0]["runs"]) == 1


def test_run_now_twice_in_a_row_is_refused_while_the_first_starts(root, tmp_path):
    deploy_batch_model(root, tmp_path)
    assert add_dir_job(root, tmp_path / "inbox", tmp_path / "results.db", every="1d")[1] is None
    first, error, _ = call(root, "job_run", name="hourly")
    assert error is None
    _r, error, _ = call(root, "job_run", name="hourly")  # before the job process took its lock
    assert error["code"] == "busy" and "a run of job hourly is still going" in error["message"]
    assert wait_run(root, "hourly", first["run"]["run_id"])["state"] == "ok"


def test_csv_cells_numbers_parsed_as_numbers_and_nothing_else():
    from app.agent.jobinputs import Unreadable, read_csv, read_json_lines

    items, bad = read_csv(b"a,b,c\n1,-2.5,x\n1_000,inf,nan\n1e3,.5,\n\n 7 ,+3,5.\n", "f.csv")
    assert [v for _r, v in items] == [{"a": 1, "b": -2.5, "c": "x"}, {"a": "1_000", "b": "inf", "c": "nan"},
                                     {"a": 1000.0, "b": 0.5, "c": None}, {"a": 7, "b": 3, "c": 5.0}]
    assert [r for r, _v in items] == ["f.csv:2", "f.csv:3", "f.csv:4", "f.csv:6"] and bad == []
    for data, says in ((b"\xff\xfe,x\n", "not UTF-8"), (b"", "no header row"), (b" , \n1,2\n", "no header row")):
        with pytest.raises(Unreadable, match=says):
            read_csv(data, "f.csv")
    items, bad = read_json_lines(b'{"x": 1}\n\nnot json\n[1, 2]\n', "f.jsonl")
    assert items == [("f.jsonl:1", {"x": 1}), ("f.jsonl:4", [1, 2])]
    assert bad[0][0] == "f.jsonl:3" and bad[0][1].startswith("not JSON") and bad[0][2] == "not json"


def test_unreadable_files_go_to_failed_with_the_reason(root, tmp_path):
    deploy_batch_model(root, tmp_path)
    inbox, out = tmp_path / "inbox", tmp_path / "results.db"
    result, error, _ = add_dir_job(root, inbox, out, every="1d", input={"kind": "dir", "path": str(inbox), "pattern": "*"})
    assert error is None, error
    (inbox / "latin1.csv").write_bytes("x\n\xe9\n".encode("latin-1"))
    (inbox / "data.parquet").write_bytes(b"PAR1")
    (inbox / "good.jsonl").write_text('{"x": 4}\n')
    (inbox / ".partial.csv").write_text("x\n1\n")  # being written: a dot name is skipped
    run = wait_run(root, "hourly", call(root, "job_run", name="hourly")[0]["run"]["run_id"])
    assert (run["state"], run["rows_out"], run["errors"]) == ("ok", 1, 2), run
    assert sorted(os.listdir(inbox / "failed")) == ["data.parquet", "data.parquet.reason.txt", "latin1.csv",
                                                    "latin1.csv.reason.txt"]
    assert "not UTF-8" in (inbox / "failed" / "latin1.csv.reason.txt").read_text()
    assert "neither CSV" in (inbox / "failed" / "data.parquet.reason.txt").read_text()
    assert {f["file"] for f in run.get("failed_files", [])} == {"latin1.csv", "data.parquet"}
    assert sorted(os.listdir(inbox)) == [".partial.csv", "done", "failed"]


def test_symlinks_in_the_inbox_are_not_followed_and_a_fifo_does_not_hang_the_run(root, tmp_path):
    """Whoever may drop files in the inbox must not make the job read the agent user's own files
    (a link to a key, to the output database) into the output."""
    deploy_batch_model(root, tmp_path)
    inbox, out = tmp_path / "inbox", tmp_path / "results.db"
    result, error, _ = add_dir_job(root, inbox, out, every="1d", input={"kind": "dir", "path": str(inbox), "pattern": "*"})
    assert error is None, error
    secret = tmp_path / "private" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text("x\n424242\n")
    (inbox / "leak.csv").symlink_to(secret)
    (inbox / "db.jsonl").symlink_to(out)
    os.mkfifo(inbox / "pipe.csv")
    (inbox / "good.csv").write_text("x\n4\n")
    run = wait_run(root, "hourly", call(root, "job_run", name="hourly")[0]["run"]["run_id"], timeout=30)
    assert (run["state"], run["rows_out"]) == ("ok", 1), run
    assert rows(out, "SELECT y FROM scores") == [(8,)]
    assert rows(out, "SELECT count(*) FROM scores_errors WHERE raw LIKE '%424242%'") == [(0,)]
    assert "symbolic link" in (inbox / "failed" / "leak.csv.reason.txt").read_text()
    assert (inbox / "failed" / "db.jsonl").is_symlink() and secret.read_text() == "x\n424242\n"
    assert (inbox / "pipe.csv").exists()  # left alone, not read


def test_an_output_folder_swapped_for_a_symlink_into_berths_root_fails_the_run_and_writes_nothing(root, tmp_path):
    deploy_batch_model(root, tmp_path)
    inbox, outdir = tmp_path / "inbox", tmp_path / "out"
    outdir.mkdir()
    result, error, _ = add_dir_job(root, inbox, outdir / "results.db", every="1d")
    assert error is None, error
    outdir.rmdir()
    outdir.symlink_to(root / ".berth")
    (inbox / "a.csv").write_text("x\n4\n")
    run = wait_run(root, "hourly", call(root, "job_run", name="hourly")[0]["run"]["run_id"])
    assert run["state"] == "failed" and "is inside Berth's own folder" in run["detail"], run
    assert not (root / ".berth" / "results.db").exists() and (inbox / "a.csv").exists()
