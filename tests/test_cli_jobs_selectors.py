"""`berth job ...` over selectors: `job list` takes names, globs and env:NAME like `status` (the
servers asked at once, one down is one line), and the commands on one job take a selector that
picks exactly one server; one picking several is refused before connecting, naming them. Real
parts: the built-in `local` server, a loopback sshd server, and one in the list that is down."""
import pytest

from agent_kit import make_bundle
from app.store.servers import ServerConfig
from app.workspace import Workspace
from cli_kit import berth
from jobs_kit import BATCH_MODEL, cleanup

ONE_JOB = [["add", "other", "--model", "scorer", "--every", "1d", "--input-dir", "/tmp", "--output",
            "sqlite:////tmp/x.db", "--table", "t"], ["edit", "hourly", "--every", "2d"], ["run", "hourly"],
           ["runs", "hourly"], ["preview", "hourly"], ["pause", "hourly"], ["resume", "hourly"],
           ["remove", "hourly"]]


@pytest.fixture
def two_servers(berth_home, capsys, tmp_path, sshd_factory):
    """`local` and qa-1 (a real sshd) with the model deployed and a job each; qa-2 is listed, down."""
    srv = sshd_factory()
    qa_root = tmp_path / "qa-1 root"
    ws = Workspace()
    ws.add_server(ServerConfig(name="qa-1", host=srv.host, port=srv.port, user=srv.user, key_path=str(srv.key_path),
                               root=str(qa_root), environment="qa"), srv.fingerprint)
    ws.servers.save(ServerConfig(name="qa-2", host="127.0.0.1", port=1, user="u", root="/nowhere", environment="qa"))
    folder = make_bundle(tmp_path / "scorer", name="scorer", model_src=BATCH_MODEL.format(version="1.0.0"))
    try:
        for name in ("local", "qa-1"):
            r = berth(capsys, "deploy", folder, "--server", name)
            assert r.code == 0, r
        yield tmp_path
    finally:
        cleanup(berth_home / "local")
        cleanup(qa_root)


def add_job(capsys, tmp_path, server: str, inbox: str):
    (tmp_path / inbox).mkdir()
    return berth(capsys, "job", "add", "hourly", "--model", "scorer", "--server", server, "--every", "1d",
                 "--input-dir", tmp_path / inbox, "--output", f"sqlite:///{tmp_path}/{inbox}.db", "--table", "scores")


def test_a_glob_or_an_environment_picking_one_server_and_job_list_over_selectors(two_servers, capsys):
    tmp_path = two_servers
    r = add_job(capsys, tmp_path, "*-1", "qa-inbox")  # a glob matching qa-1 only
    assert r.code == 0 and r.out.startswith("job hourly added on qa-1: "), r
    r = add_job(capsys, tmp_path, "env:local", "local-inbox")  # an environment of one server
    assert r.code == 0 and r.out.startswith("job hourly added on local: "), r

    r = berth(capsys, "job", "list", "--server", "env:qa", "--server", "loc*", "--json")
    assert r.code == 1 and [(j["server"], j["name"]) for j in r.json()] == [
        ("local", "hourly"), ("qa-1", "hourly")], r
    assert r.err.count("\n") == 1 and r.err.startswith("berth: qa-2: "), r  # the one down: one line
    r = berth(capsys, "job", "list", "--server", "qa-*", "--parallel", "1")
    assert r.code == 1 and [line.split()[:2] for line in r.out.splitlines()] == [["SERVER", "NAME"], ["qa-1", "hourly"]]
    r = berth(capsys, "job", "list", "--server", "env:staging")
    assert r.code != 0 and r.err.count("\n") == 1 and "no server is in environment 'staging'" in r.err, r

    r = berth(capsys, "job", "run", "hourly", "--server", "q*-1", "--wait")
    assert r.code == 0 and "job hourly on qa-1: run " in r.err and r.out.startswith("run "), r
    runs = berth(capsys, "job", "runs", "hourly", "--server", "env:local", "--json")
    assert runs.code == 0 and runs.json() == [], runs
    r = berth(capsys, "job", "pause", "hourly", "--server", "*-1")
    assert r.code == 0 and r.out == "job hourly on qa-1: paused\n", r


@pytest.mark.parametrize("argv", ONE_JOB, ids=[a[0] for a in ONE_JOB])
def test_a_selector_picking_several_servers_is_refused_naming_them(berth_home, capsys, argv):
    ws = Workspace()
    for port, name in ((1, "qa-1"), (2, "qa-2")):  # nothing listens: the refusal comes before connecting
        ws.servers.save(ServerConfig(name=name, host="127.0.0.1", port=port, user="u", root="/nowhere",
                                     environment="qa"))
    for selector in ("qa-*", "env:qa"):
        r = berth(capsys, "job", *argv, "--server", selector)
        assert r.code == 1 and r.out == "" and r.err == (
            f"berth: --server {selector} picks 2 servers (qa-1, qa-2); this command acts on one: give its name\n"), r
    events = berth(capsys, "audit", "list", "--json").json()
    assert not [e for e in events if e["action"] == "connect"]  # nothing was tried
    r = berth(capsys, "job", *argv, "--server", "qa-3")
    assert r.code == 1 and r.err.count("\n") == 1 and "no server named 'qa-3'; close names: qa-1, qa-2" in r.err, r
