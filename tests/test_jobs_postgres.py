"""Jobs on a real PostgreSQL server (pg_kit.py): the output exactly once across a SIGKILL, a source
with a watermark, column types, the preview, the refusals at `job add`, and the password nowhere on
the server's disk but its passfile. The driver (psycopg 3) is installed into the release's
virtualenv by the agent from PyPI (pip's cache keeps it to one download)."""
import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from agent_kit import call
from jobs_kit import cleanup, deploy_batch_model, rows, wait_run, write_csv
from pg_kit import PASSWORD, PgServer, _free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pg():
    server = PgServer()
    yield server
    server.stop()


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "srv"
    yield r
    cleanup(r)


def add_pg_job(root, pg, inbox, db, password=PASSWORD, name="hourly", **extra):
    inbox.mkdir(parents=True, exist_ok=True)
    req = dict(name=name, model="scorer", schedule={"every": "1d"}, tz="UTC",
               input={"kind": "dir", "path": str(inbox), "pattern": "*.csv"},
               output={"url": pg.url(db), "table": "scores"}, version=None,
               db_passwords={pg.url(db): password} if password is not None else {})
    req.update(extra)
    return call(root, "job_add", **req)


def files_holding(folder: Path, secret: str, skip: set[Path] = frozenset()) -> list[str]:
    found = []
    for dirpath, _dirs, files in os.walk(folder):
        for f in files:
            p = Path(dirpath) / f
            if p in skip or p.is_symlink() or not p.is_file():
                continue
            data = p.read_bytes()
            if secret.encode() in data or secret.replace(":", "\\:").replace("\\", "\\\\").encode() in data:
                found.append(str(p))
    return found


def test_output_three_batches_sigkill_each_good_row_once_and_the_password_only_in_the_passfile(root, tmp_path, pg):
    deploy_batch_model(root, tmp_path)
    db, inbox = pg.new_db(), tmp_path / "inbox"
    result, error, events = add_pg_job(root, pg, inbox, db)
    assert error is None, error
    assert any("psycopg" in (e.get("line") or "") for e in events)  # installed, with progress
    assert result["job"]["output"] == {"url": pg.url(db), "table": "scores"}
    write_csv(inbox / "1.csv", [{"x": i, "sleep": 0} for i in range(1, 4)])
    write_csv(inbox / "2.csv", [{"x": i, "sleep": 0.3} for i in range(10, 16)] + [{"x": -5, "sleep": 0}])
    write_csv(inbox / "3.csv", [{"x": i, "sleep": 0} for i in range(20, 23)] + [{"x": -6, "sleep": 0}])
    result, error, _ = call(root, "job_run", name="hourly")
    assert error is None, error
    deadline = time.monotonic() + 90
    while not (inbox / "done" / "1.csv").exists():  # batch 1 committed: batch 2 (1.8 s of sleeps) is going
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.4)
    os.kill(result["run"]["pid"], signal.SIGKILL)
    killed = wait_run(root, "hourly", result["run"]["run_id"])
    assert killed["state"] == "failed"
    assert pg.psql("SELECT count(*) FROM scores", db) == [["3"]]  # batch 2 left nothing behind
    assert (inbox / "2.csv").exists() and (inbox / "3.csv").exists()

    run = wait_run(root, "hourly", call(root, "job_run", name="hourly")[0]["run"]["run_id"])
    assert (run["state"], run["rows_out"], run["errors"]) == ("ok", 9, 2), run
    xs = sorted(int(r[0]) // 2 for r in pg.psql("SELECT y FROM scores", db))
    assert xs == [1, 2, 3, 10, 11, 12, 13, 14, 15, 20, 21, 22]  # each good row exactly once
    assert sorted(r[0] for r in pg.psql("SELECT input_ref FROM scores_errors", db)) == ["2.csv:8", "3.csv:5"]
    assert pg.psql("SELECT reason FROM scores_errors WHERE input_ref = '2.csv:8'", db) == [
        ["ValueError: x must not be negative"]]
    assert sorted(os.listdir(inbox / "done")) == ["1.csv", "2.csv", "3.csv"]
    assert pg.psql("SELECT count(*) FROM berth_job_done WHERE job = 'hourly'", db) == [["3"]]
    types = dict(map(tuple, pg.psql("SELECT column_name, data_type FROM information_schema.columns "
                                    "WHERE table_name = 'scores'", db)))
    assert types == {"run_id": "text", "model_version": "text", "input_ref": "text",
                     "time": "timestamp with time zone", "y": "bigint", "label": "text"}

    passfile = root / ".berth" / "pgpass"
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    assert passfile.read_text() == "127.0.0.1:%d:%s:berth:%s\n" % (
        pg.port, db, PASSWORD.replace("\\", "\\\\").replace(":", "\\:"))
    assert files_holding(tmp_path, PASSWORD, skip={passfile}) == []  # job.json, the journal, logs, runs
    assert PASSWORD not in json.dumps(pg.psql("SELECT * FROM scores_errors", db))


def test_a_postgresql_source_takes_only_rows_after_the_watermark(root, tmp_path, pg):
    deploy_batch_model(root, tmp_path)
    db, out = pg.new_db(), tmp_path / "results.db"
    pg.psql("CREATE TABLE readings (id serial PRIMARY KEY, x double precision, at bigint, note text);"
            "INSERT INTO readings (x, at, note) VALUES (1, 100, 'a%'), (2, 100, 'b'), (-3, 101, 'c'), (4, 102, 'd')", db)
    url = pg.url(db)
    result, error, _ = call(root, "job_add", name="from-pg", model="scorer", schedule={"every": "1d"}, tz="UTC",
                            input={"kind": "db", "url": url, "sql": "SELECT id, x, at FROM readings WHERE note LIKE '%'",
                                   "watermark": "at"},
                            output={"url": f"sqlite:///{out}", "table": "scores"}, version="1.0.0",
                            db_passwords={url: PASSWORD})
    assert error is None, error
    run = wait_run(root, "from-pg", call(root, "job_run", name="from-pg")[0]["run"]["run_id"])
    assert (run["state"], run["rows_in"], run["rows_out"], run["errors"]) == ("ok", 4, 3, 1), run
    assert rows(out, "SELECT value FROM berth_job_watermark WHERE job = 'from-pg'") == [(102,)]
    pg.psql("INSERT INTO readings (x, at, note) VALUES (5, 102, 'e'), (6, 103, 'f'), (7, 104, 'g')", db)
    run = wait_run(root, "from-pg", call(root, "job_run", name="from-pg")[0]["run"]["run_id"])
    assert (run["state"], run["rows_in"], run["rows_out"]) == ("ok", 2, 2), run  # at = 102 was committed
    assert sorted(r[0] for r in rows(out, "SELECT input_ref FROM scores")) == [
        "id=1,at=100", "id=2,at=100", "id=4,at=102", "id=6,at=103", "id=7,at=104"]
    assert rows(out, "SELECT input_ref FROM scores_errors") == [("id=3,at=101",)]
    with pytest.raises(subprocess.CalledProcessError):  # the job's read-only transaction wrote nothing: a check
        pg.psql("SELECT * FROM berth_job_done", db)


def _venv_python(root: Path) -> str:
    return str(next((root / "models" / "scorer" / "releases").glob("*/.venv/bin/python")))


def test_preview_and_column_types_widen(root, tmp_path, pg):
    """PostgresOutput run in the release's virtualenv (where psycopg is): columns typed by their first
    value, widened when a value does not fit; preview() of the latest rows, read only."""
    deploy_batch_model(root, tmp_path)
    db = pg.new_db()
    assert add_pg_job(root, pg, tmp_path / "inbox", db)[1] is None  # installs the driver
    script = f"""
import json, sys
from app.agent.jobio import open_output
from app.agent.jobinputs import Batch
spec = {{"url": {pg.url(db)!r}, "table": "t"}}
out = open_output(spec, "j")
out.commit(Batch("b1", [], [], "m1"), [("r1", {{"n": 1, "f": 1.5, "s": "a", "o": {{"k": [1]}}, "b": True, "z": None}})],
           [("r0", "bad", "raw0")], "run1", "1.0.0", "2026-01-01T00:00:00+00:00")
out.commit(Batch("b2", [], [], "m2"), [("r2", {{"n": 2.5, "f": 2, "s": 3, "b": "yes", "z": 7}})], [], "run2", "1.0.0",
           "2026-01-01T01:00:00+00:00")
out.close()
ro = open_output(spec, "j", readonly=True)
print(json.dumps({{"preview": ro.preview(5), "done": ro.is_done("m2")}}))
"""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent), PGPASSFILE=str(root / ".berth" / "pgpass"))
    out = json.loads(subprocess.run([_venv_python(root), "-c", script], env=env, capture_output=True, text=True,
                                    check=True).stdout)
    p = out["preview"]
    assert out["done"] is True
    assert p["columns"] == ["run_id", "model_version", "input_ref", "time", "n", "f", "s", "o", "b", "z"]
    assert p["rows"][0][4:] == [2.5, 2.0, "3", None, "yes", "7"]  # newest first
    assert p["rows"][1][4:] == [1.0, 1.5, "a", {"k": [1]}, "true", None]
    assert p["errors"]["rows"] == [["run1", "1.0.0", "r0", "2026-01-01T00:00:00+00:00", "bad", "raw0"]]
    types = dict(map(tuple, pg.psql("SELECT column_name, data_type FROM information_schema.columns "
                                    "WHERE table_name = 't'", db)))
    assert {k: types[k] for k in "nfsobz"} == {"n": "double precision", "f": "double precision", "s": "text",
                                              "o": "jsonb", "b": "text", "z": "text"}

    from app.agent import jobpreview
    from app.agent.layout import Root

    job = {"model": "scorer", "output": {"url": pg.url(db), "table": "t"}}
    seen = jobpreview._in_venv(Root(str(root)), job, "j", 1)  # as job_preview does, in the release's venv
    assert seen["rows"] == p["rows"][:1] and seen["errors"]["rows"] == p["errors"]["rows"]


def test_sqlite_preview_is_read_only_newest_first(tmp_path):
    from app.agent.jobinputs import Batch
    from app.agent.jobio import open_output

    spec = {"url": f"sqlite:///{tmp_path}/out.db", "table": "t"}
    out = open_output(spec, "j")
    for i in range(3):
        out.commit(Batch("b", [], [], "m%d" % i), [("r%d" % i, {"y": i})], [("e%d" % i, "bad", "raw")] if i else [],
                   "run", "1.0.0", "2026-01-01T00:00:00+00:00")
    out.close()
    ro = open_output(spec, "j", readonly=True)
    p = ro.preview(2)
    assert p["columns"] == ["run_id", "model_version", "input_ref", "time", "y"]
    assert [r[2] for r in p["rows"]] == ["r2", "r1"] and [r[2] for r in p["errors"]["rows"]] == ["e2", "e1"]
    with pytest.raises(Exception, match="readonly"):
        ro.conn.execute("DELETE FROM t")
    ro.close()


@pytest.fixture(scope="module")
def refusing(tmp_path_factory):
    """One deployed root for the refusals (a refused job_add changes nothing, so they can share it)."""
    base = tmp_path_factory.mktemp("refusals")
    deploy_batch_model(base / "srv", base)
    yield base / "srv", base
    cleanup(base / "srv")


@pytest.mark.parametrize("case", ["password in url", "unreachable", "wrong password", "no such database"])
def test_refused_at_job_add_with_one_line_and_nothing_created(refusing, pg, case):
    root, base = refusing
    db = pg.new_db()
    output = {"url": pg.url(db), "table": "scores"}
    password = PASSWORD
    if case == "password in url":
        output["url"] = f"postgresql://berth:{PASSWORD}@127.0.0.1:{pg.port}/{db}"
        password = None
    elif case == "unreachable":
        output["url"] = f"postgresql://berth@127.0.0.1:{_free_port()}/{db}"
    elif case == "wrong password":
        password = "not-the-password"
    elif case == "no such database":
        output["url"] = pg.url("nosuchdb")
    passwords = {output["url"]: password} if password else {}
    result, error, _ = add_pg_job(root, pg, base / "inbox", db, password=None, output=output, db_passwords=passwords)
    assert result is None and "\n" not in error["message"], error
    says = {"password in url": "has a password inside it: give the URL without it (postgresql://berth@",
            "unreachable": "cannot connect to postgresql://berth@127.0.0.1:",
            "wrong password": "password authentication failed for user \"berth\"",
            "no such database": "database \"nosuchdb\" does not exist"}[case]
    assert says in error["message"], error
    assert PASSWORD not in error["message"] and "not-the-password" not in error["message"]
    assert not (root / "jobs" / "hourly").exists() and not (root / ".berth" / "pgpass").exists()
    assert [f for f in os.listdir(root / ".berth") if "pgpass" in f] == []
    assert files_holding(base, PASSWORD) == [] and files_holding(base, "not-the-password") == []

def test_cli_password_from_the_keyring_never_on_disk_but_the_passfile(berth_home, capsys, tmp_path, pg, monkeypatch,
                                                                      memory_keyring):
    """`berth db-password URL` (stdin) then `berth job add` on `local`: the password reaches the server's
    passfile and nowhere else under BERTH_HOME (the audit database, the activity, the server root)."""
    import io

    from agent_kit import make_bundle
    from cli_kit import berth
    from jobs_kit import BATCH_MODEL

    folder = make_bundle(tmp_path / "scorer", name="scorer", model_src=BATCH_MODEL.format(version="1.0.0"))
    assert berth(capsys, "deploy", folder, "--server", "local").code == 0
    try:
        db, inbox = pg.new_db(), tmp_path / "inbox"
        inbox.mkdir()
        base = ["job", "add", "pgjob", "--model", "scorer", "--server", "local", "--every", "1d", "--input-dir", inbox,
                "--table", "scores", "--output"]
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        r = berth(capsys, *base, f"postgresql://berth:{PASSWORD}@127.0.0.1:{pg.port}/{db}")
        assert r.code == 1 and r.err.count("\n") == 1 and "has a password inside it" in r.err and PASSWORD not in r.err
        r = berth(capsys, *base, pg.url(db))
        assert r.code == 1 and r.err == (f"berth: no password for {pg.url(db)} in this computer's keyring; store it "
                                         f"with `berth db-password {pg.url(db)}` (reads it from stdin), then run this "
                                         "again\n"), r
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        r = berth(capsys, "db-password", f"postgresql://berth@127.0.0.1:{pg.port}/{db}")
        assert r.code == 0 and PASSWORD not in r.out + r.err, r
        assert memory_keyring.get_password("berth", f"db:{pg.url(db)}") == PASSWORD
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        r = berth(capsys, *base, pg.url(db))
        assert r.code == 0, r
        write_csv(inbox / "a.csv", [{"x": 1}, {"x": -1}, {"x": 3}])
        r = berth(capsys, "job", "run", "pgjob", "--server", "local", "--wait")
        assert r.code == 0 and ": ok, 3 in, 2 out, 1 error(s)" in r.out, r
        assert pg.psql("SELECT count(*) FROM scores", db) == [["2"]]
        passfile = berth_home / "local" / ".berth" / "pgpass"
        assert passfile.exists() and files_holding(berth_home, PASSWORD, skip={passfile}) == []
        assert files_holding(tmp_path, PASSWORD, skip={passfile}) == []
    finally:
        cleanup(berth_home / "local")


def test_a_release_deployed_after_the_job_gets_the_driver_at_its_first_run(root, tmp_path, pg):
    deploy_batch_model(root, tmp_path)
    db, inbox = pg.new_db(), tmp_path / "inbox"
    assert add_pg_job(root, pg, inbox, db)[1] is None  # the driver in 1.0.0's virtualenv
    from agent_kit import deploy, make_bundle
    from jobs_kit import BATCH_MODEL

    v2 = make_bundle(tmp_path / "v2", name="scorer", version="2.0.0", model_src=BATCH_MODEL.format(version="2.0.0"))
    (v2 / "lookup.zip").write_bytes(b"PK\x05\x06" + bytes(18))  # a package file: another environment (envs.py)
    assert deploy(root, v2)[1] is None  # current now: a virtualenv without the driver
    assert os.path.realpath(root / "models/scorer/releases/2.0.0/.venv") != os.path.realpath(
        root / "models/scorer/releases/1.0.0/.venv")
    write_csv(inbox / "a.csv", [{"x": 1}, {"x": 2}])
    run = wait_run(root, "hourly", call(root, "job_run", name="hourly")[0]["run"]["run_id"], timeout=180)
    assert (run["state"], run["version"], run["rows_out"]) == ("ok", "2.0.0", 2), run
    assert pg.psql("SELECT DISTINCT model_version, label FROM scores", db) == [["2.0.0", "v2.0.0"]]
    assert "installing the PostgreSQL driver" in (root / "jobs" / "hourly" / "job.log").read_text()
