"""The CLI over several servers: selectors (names, globs, env:NAME, repeated), the natural order,
and the per-server work run in parallel against several real loopback sshd's, one of them down."""
import threading
import time

import pytest

from agent_kit import stop_all
from app import errors
from app.cli.per_server import for_each_server, thread_workspaces
from app.cli.selectors import NoServerMatches, resolve_one, resolve_servers
from app.formatting import natural_key
from app.remote.errors import RemoteError
from app.store.servers import ServerConfig
from app.workspace import Workspace
from cli_kit import berth, iris_copy

# name -> environment; the order a person expects is local's place among them by name
FLEET = {"web-2": "staging", "web-10": "production", "web-1": "staging", "db-1": "production"}


def saved_fleet() -> Workspace:
    """The servers in Berth's list only (nothing listens there): enough for what connects to nothing."""
    ws = Workspace()
    for port, (name, env) in enumerate(FLEET.items(), start=1):
        ws.servers.save(ServerConfig(name=name, host="127.0.0.1", port=port, user="u", root="/nowhere",
                                     environment=env))
    return ws


@pytest.fixture
def fleet(sshd_factory, tmp_path):
    """FLEET on four real sshd's (own ports, host keys and roots), added and checked as `server add` does."""
    ws = Workspace()
    servers, roots = {}, []
    for name, env in FLEET.items():
        srv = sshd_factory()
        root = tmp_path / f"{name} root"
        ws.add_server(ServerConfig(name=name, host=srv.host, port=srv.port, user=srv.user,
                                   key_path=str(srv.key_path), root=str(root), environment=env), srv.fingerprint)
        servers[name] = srv
        roots.append(root)
    yield servers
    for root in roots:
        stop_all(root)


def logins(srv) -> int:
    return srv.log_path.read_text().count("Accepted publickey")


def test_natural_order_reads_numbers_as_numbers():
    names = ["web-10", "s10", "web-2", "s2", "local", "S1", "web-1", "db-1", "s1a"]
    assert sorted(names, key=natural_key) == ["db-1", "local", "S1", "s1a", "s2", "s10", "web-1", "web-2", "web-10"]
    assert sorted(["a10b2", "a10b10", "a9"], key=natural_key) == ["a9", "a10b2", "a10b10"]


def test_names_globs_and_environments_pick_their_servers_once_in_natural_order():
    ws = saved_fleet()
    assert resolve_servers(ws, ["web-*"]) == ["web-1", "web-2", "web-10"]
    assert resolve_servers(ws, ["env:production"]) == ["db-1", "web-10"]
    assert resolve_servers(ws, ["env:local"]) == ["local"]
    assert resolve_servers(ws, ["web-1?"]) == ["web-10"]
    assert resolve_servers(ws, ["web-[12]"]) == ["web-1", "web-2"]
    assert resolve_servers(ws, ["web-10", "env:staging", "web-1", "*-1"]) == ["db-1", "web-1", "web-2", "web-10"]
    assert resolve_servers(ws, ["*"]) == ["db-1", "local", "web-1", "web-2", "web-10"]
    with pytest.raises(NoServerMatches):  # names are lower case; a glob matches exactly
        resolve_servers(ws, ["WEB-*"])


def test_a_selector_that_matches_nothing_names_what_exists():
    ws = saved_fleet()
    with pytest.raises(NoServerMatches) as e:
        resolve_servers(ws, ["web-1", "web-3"])  # one bad selector spoils the lot: nothing runs
    assert str(e.value).startswith("no server named 'web-3'; close names: ")
    assert "web-1" in str(e.value) and "web-2" in str(e.value) and e.value.code == errors.UNKNOWN_SERVER
    with pytest.raises(NoServerMatches, match=r"^no server name matches 'api-\*'; see `berth server list`$"):
        resolve_servers(ws, ["api-*"])
    with pytest.raises(NoServerMatches, match="'wbe-\\*'; close names: .*web-1, web-2, web-10"):
        resolve_servers(ws, ["wbe-*"])
    with pytest.raises(NoServerMatches, match="no server is in environment 'qa'; the environments are: local, "
                                              "production, staging"):
        resolve_servers(ws, ["env:qa"])
    with pytest.raises(NoServerMatches, match="give an environment.s name"):
        resolve_servers(ws, ["env:"])


def test_a_single_target_command_refuses_a_selector_picking_several():
    ws = saved_fleet()
    assert resolve_one(ws, "web-1?") == "web-10"
    with pytest.raises(NoServerMatches) as e:
        resolve_one(ws, "env:staging")
    assert e.value.code == errors.USAGE
    assert str(e.value) == ("--server env:staging picks 2 servers (web-1, web-2); this command acts on one: give "
                            "its name")


def test_selectors_on_the_command_line_fail_before_connecting(capsys):
    saved_fleet()
    for argv, said in ((["status", "--server", "web-1", "--server", "api-*"], "no server name matches 'api-*'"),
                       (["monitor", "--once", "--server", "env:qa"], "no server is in environment 'qa'"),
                       (["releases", "iris", "--server", "web-3"], "no server named 'web-3'; close names:"),
                       (["audit", "sync", "--server", "db-*", "--server", "x*"], "no server name matches 'x*'"),
                       (["server", "check", "web-1", "nope"], "no server named 'nope'"),
                       (["predict", "iris", "--server", "web-*", "--input", "{}"], "--server web-* picks 3 servers")):
        r = berth(capsys, *argv)
        assert r.code == 1 and r.out == "" and r.err.startswith(f"berth: {said}") and r.err.count("\n") == 1, r
    r = berth(capsys, "status", "--server", "web-1", "--parallel", "0")
    assert r.code == 2 and "--parallel: must be 1 to 256" in r.err
    events = berth(capsys, "audit", "list", "--json").json()
    assert not [e for e in events if e["action"] == "connect"]  # nothing was tried


def test_server_list_shows_environments_and_filters_by_one(capsys):
    saved_fleet()
    rows = berth(capsys, "server", "list", "--json").json()
    assert [(r["name"], r["environment"]) for r in rows] == [
        ("db-1", "production"), ("local", "local"), ("web-1", "staging"), ("web-2", "staging"),
        ("web-10", "production")]
    rows = berth(capsys, "server", "list", "--env", "production", "--json").json()
    assert [r["name"] for r in rows] == ["db-1", "web-10"]
    r = berth(capsys, "server", "list", "--env", "staging")
    assert r.code == 0 and [line.split()[0] for line in r.out.splitlines()] == ["NAME", "web-1", "web-2"]
    assert "ENVIRONMENT" in r.out.splitlines()[0]
    r = berth(capsys, "server", "list", "--env", "qa")
    assert r.code == 1 and "the environments are: local, production, staging" in r.err


def test_a_server_changes_environment_audited(capsys):
    saved_fleet()
    r = berth(capsys, "server", "set-env", "web-1", "production")
    assert r.code == 0 and r.out.strip() == "web-1: environment 'staging' -> environment 'production'", r
    assert [r["name"] for r in berth(capsys, "server", "list", "--env", "production", "--json").json()] == [
        "db-1", "web-1", "web-10"]
    [event] = [e for e in berth(capsys, "audit", "list", "--json").json() if e["action"] == "server.edit"]
    assert (event["server"], event["old"], event["new"], event["outcome"]) == ("web-1", "staging", "production", "ok")
    assert berth(capsys, "server", "set-env", "web-1", "production").out.startswith("web-1 is already in")
    assert berth(capsys, "server", "set-env", "web-1", "").code == 0
    assert berth(capsys, "server", "list", "--json").json()[2]["environment"] == ""
    r = berth(capsys, "server", "set-env", "web-1", "pro duction")
    assert r.code == 2 and "use a-z A-Z 0-9 . _ -" in r.err
    r = berth(capsys, "server", "set-env", "web-1", "env:*")
    assert r.code == 2
    r = berth(capsys, "server", "set-env", "local", "production")
    assert r.code == 1 and "local is always in the environment 'local'" in r.err
    r = berth(capsys, "server", "add", "x", "--host", "127.0.0.1", "--env", "no way")
    assert r.code == 2 and "--env" in r.err


def test_for_each_server_keeps_the_order_the_bound_and_goes_on_after_a_failure(capsys):
    names = [f"s{i}" for i in range(1, 9)]
    running, most = [0], [0]
    lock = threading.Lock()

    def work(name):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05 * (9 - int(name[1:])))  # the last ones end first
        with lock:
            running[0] -= 1
        if name == "s3":
            raise RemoteError("connection refused")
        return name.upper()

    t0 = time.monotonic()
    outcome = for_each_server(names, work, named=False, parallel=4)
    assert time.monotonic() - t0 < sum(0.05 * i for i in range(1, 9)) * 0.75  # not one after another
    assert outcome.results == ["S1", "S2", "S4", "S5", "S6", "S7", "S8"] and outcome.failed == ["s3"]
    assert outcome.exit_code == 1 and most[0] == 4
    assert capsys.readouterr().err == "berth: s3: connection refused\n"
    with pytest.raises(RemoteError):  # the one server the operator named: its failure is the command's
        for_each_server(["s3"], work, named=True, parallel=4)
    with pytest.raises(ZeroDivisionError):  # a bug is not a server's failure
        for_each_server(names, lambda name: 1 / 0, named=False, parallel=4)


def test_each_thread_has_its_own_workspace():
    ws = Workspace()
    own = thread_workspaces(ws)
    seen = for_each_server(["a", "b", "c"], lambda name: (own(), threading.get_ident()), named=False, parallel=3)
    workspaces = [w for w, _ in seen.results]
    assert own() is ws and ws not in workspaces and len({id(w) for w in workspaces}) == len(
        {ident for _, ident in seen.results})
    for w in workspaces:  # closed by their thread: using one now fails
        with pytest.raises(Exception):
            w.db.execute("select 1")


def test_monitor_once_takes_one_sample_of_each_server_at_once(capsys, fleet):
    before = {name: logins(srv) for name, srv in fleet.items()}
    r = berth(capsys, "monitor", "--once", "--json", "--interval", "1", "--server", "web-*", "--server", "env:production")
    assert r.code == 0, r
    samples = r.json()
    assert [s["server"] for s in samples] == ["db-1", "web-1", "web-2", "web-10"]
    assert all(s["interval_s"] == 1.0 and 0 <= s["cpu_percent"] <= 100 for s in samples)
    # one after another, the four 1-second windows would end at least 3 s apart (a loaded machine
    # slows the logins, not the windows)
    ts = [s["ts"] for s in samples]
    assert max(ts) - min(ts) < 3.0, ts
    assert {name: logins(srv) - before[name] for name, srv in fleet.items()} == dict.fromkeys(FLEET, 1)

    r = berth(capsys, "monitor", "--once", "--server", "env:staging")  # the table, default window
    assert r.code == 0 and [line.split()[0] for line in r.out.splitlines() if line.startswith("web-")] == [
        "web-1", "web-2"], r

    fleet["web-2"].stop()
    r = berth(capsys, "monitor", "--once", "--json", "--server", "web-*")
    assert r.code == 1 and [s["server"] for s in r.json()] == ["web-1", "web-10"], r
    assert r.err.count("\n") == 1 and r.err.startswith("berth: web-2: "), r


def test_status_in_parallel_is_the_same_as_one_by_one_and_a_server_down_is_one_line(capsys, fleet, tmp_path):
    for name in ("web-1", "db-1"):
        assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", name).code == 0
    one_by_one = []
    for name in sorted(["local", *FLEET], key=natural_key):
        r = berth(capsys, "status", "--server", name, "--json")
        assert r.code == 0, r
        one_by_one += r.json()
    assert [(s["server"], s["model"]) for s in one_by_one] == [("db-1", "iris"), ("web-1", "iris")]
    r = berth(capsys, "status", "--json")
    assert r.code == 0 and r.err == "" and r.json() == one_by_one, r
    assert berth(capsys, "status", "--json", "--parallel", "1").json() == one_by_one
    assert berth(capsys, "status", "--json", "--server", "web-*", "--server", "db-1").json() == one_by_one

    r = berth(capsys, "releases", "iris", "--server", "env:production", "--server", "web-1", "--json")
    assert r.code == 1 and [(x["server"], x["version"], x["current"]) for x in r.json()] == [
        ("db-1", "1.0.0", True), ("web-1", "1.0.0", True)], r
    assert r.err.count("\n") == 1 and r.err.startswith("berth: web-10: ") and "not deployed" in r.err
    r = berth(capsys, "releases", "iris", "--server", "*-1")
    assert r.code == 0 and [line.split()[:3] for line in r.out.splitlines()] == [
        ["SERVER", "CURRENT", "VERSION"], ["db-1", "*", "1.0.0"], ["web-1", "*", "1.0.0"]], r

    r = berth(capsys, "server", "check", "env:staging", "db-1")
    heads = [line.split(":")[0] for line in r.out.splitlines() if ": Python " in line]  # each server's first line
    assert r.code == 0 and heads == ["db-1", "web-1", "web-2"], r
    r = berth(capsys, "server", "check", "web-*", "--accept-host-key", "SHA256:x")
    assert r.code == 1 and "picks 3: give one server's name" in r.err

    r = berth(capsys, "audit", "sync", "--server", "*-1")
    assert r.code == 0 and [line.split(":")[0] for line in r.out.splitlines()] == ["db-1", "web-1"], r

    fleet["db-1"].stop()
    r = berth(capsys, "status", "--json")
    assert r.code == 1 and r.json() == [s for s in one_by_one if s["server"] != "db-1"], r
    assert r.err.count("\n") == 1 and r.err.startswith("berth: db-1: "), r
    r = berth(capsys, "status", "--server", "db-1")  # named alone: its failure is the command's line
    assert r.code == 1 and r.err.startswith("berth: ") and not r.err.startswith("berth: db-1: "), r


def test_a_login_failure_advises_the_one_server_a_selector_named():
    from app.cli import _for_cli
    from app.remote.errors import AuthFailed
    from app.remote.sshauth import NO_PASSWORD

    summary = f"could not log in to h:22 as u; tried {NO_PASSWORD} box"
    e = AuthFailed(summary + " (enter the password in the server's settings)", summary, True)
    for server, named in ((["box"], "box"), (["web-*"], "SERVER"), (["env:staging"], "SERVER"),
                          (["a", "b"], "SERVER")):
        line = _for_cli(e, type("Args", (), {"server": server, "name": None})())
        assert f"`berth server password {named}`" in line and "[" not in line, line
