"""Group deploys and rollbacks from the command line (`--server` repeated, a glob or env:NAME), on
real local servers, each with its own root and real runners; one server is made to fail for real
(its root lies under a regular file, so nothing can be created there)."""
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cli_kit import berth, iris_copy
from app.store.servers import ServerConfig
from app.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def fleet(tmp_path, berth_home):
    """add(name, environment="", broken=False): a local server with its own root; runners stopped after."""
    roots = [berth_home / "local"]
    ws = Workspace()

    def add(name, environment="staging", broken=False):
        if broken:
            (tmp_path / "a-file").write_text("not a folder\n")
            root = tmp_path / "a-file" / "root"
        else:
            root = tmp_path / "roots" / name
            roots.append(root)
        ws.servers.save(ServerConfig(name=name, kind="local", root=str(root), environment=environment))
        return name

    yield add
    from agent_kit import stop_all
    for root in roots:
        if root.is_dir():
            stop_all(root)


def summary_of(run):
    return {s["server"]: s for s in run.json()["servers"]}


def status_versions(capsys):
    rows = berth(capsys, "status", "--json").json()
    return {r["server"]: r["version"] for r in rows if r["model"] == "iris"}


def events(capsys, action=None):
    rows = berth(capsys, "audit", "list", "--json", *(["--action", action] if action else [])).json()
    return list(reversed(rows))


def test_a_failing_server_spends_the_budget_the_ones_in_flight_finish_the_rest_are_skipped(capsys, tmp_path, fleet):
    for name in ("box1", "box3", "box4"):
        fleet(name)
    fleet("box2", broken=True)
    r = berth(capsys, "deploy", iris_copy(tmp_path), "--server", "box*", "--parallel", "2", "--max-failures", "0",
              "--json")
    assert r.code == 1, r
    summary = summary_of(r)
    assert {n: s["state"] for n, s in summary.items()} == {"box1": "ok", "box2": "failed", "box3": "skipped",
                                                           "box4": "skipped"}
    assert summary["box1"]["version"] == "1.0.0" and "Not a directory" in summary["box2"]["detail"]
    assert r.json()["stopped"] == "budget" and r.json()["now"]["box3"] == "skipped: not started"
    assert "no more servers were started: the failure budget (--max-failures 0) was spent" in r.err
    # progress: whole lines, each named by its server
    progress = r.err.splitlines()[1:-1]
    assert progress and [line for line in progress if not re.match(r"\[box[12]\] \S", line)] == \
        ["[box3] now: skipped: not started", "[box4] now: skipped: not started"]
    assert "[box1] Health check: 1.0.0 answering on port" in r.err and "[box1] now: deployed 1.0.0" in r.err

    # what the summary says each server runs is what the servers say (box2 cannot be read at all)
    assert status_versions(capsys) == {"box1": "1.0.0"}

    log = events(capsys)
    group = [e for e in log if e["action"] == "deploy.group"]
    assert [e["outcome"] for e in group] == ["started", "failed"] and group[1]["ref"] == group[0]["id"]
    assert (group[0]["model"], group[0]["version"], len(group[0]["sha256"])) == ("iris", "1.0.0", 64)
    facts = json.loads(group[1]["detail"])
    assert facts["servers"] == ["box1", "box2", "box3", "box4"] and facts["selectors"] == ["box*"]
    assert (facts["parallel"], facts["max_failures"], facts["stopped"]) == (2, 0, "budget")
    assert facts["outcomes"] == {"box1": "deployed 1.0.0", "box2": summary["box2"]["state"] + ": "
                                 + summary["box2"]["detail"], "box3": "skipped: not started",
                                 "box4": "skipped: not started"}
    per_server = [(e["server"], e["outcome"]) for e in log if e["action"] == "deploy"]
    assert sorted(per_server) == [("box1", "ok"), ("box1", "started"), ("box2", "failed"), ("box2", "started")]


def test_a_canary_that_fails_deploys_nowhere_else(capsys, tmp_path, fleet):
    fleet("box0", broken=True)
    for name in ("box1", "box2"):
        fleet(name)
    r = berth(capsys, "deploy", iris_copy(tmp_path), "--server", "env:staging", "--canary-first",
              "--max-failures", "5")
    assert r.code == 1, r
    assert re.search(r"box0 +failed: ", r.out) and re.search(r"box1 +skipped: not started", r.out), r.out
    assert "the canary (box0) did not succeed" in r.err
    assert status_versions(capsys) == {}
    assert not any(e["server"] in ("box1", "box2") for e in events(capsys))


def test_a_production_server_without_a_reason_refuses_the_whole_group(capsys, tmp_path, fleet):
    fleet("box1")
    fleet("box2", environment="production")
    fleet("box3", environment="production")
    assert berth(capsys, "settings", "set", "require_reason_production", "true").code == 0
    bundle = iris_copy(tmp_path)
    r = berth(capsys, "deploy", bundle, "--server", "box*", "--server", "local")
    assert r.code == 1, r
    assert r.err.count("\n") == 1 and "box2, box3 are production servers: give a reason" in r.err
    assert "nothing was changed on any of the 4 servers" in r.err
    assert status_versions(capsys) == {}
    log = events(capsys)
    assert [(e["action"], e["server"]) for e in log if e["action"] != "settings.change"] == \
        [("permission.denied", "box2"), ("permission.denied", "box3")]

    r = berth(capsys, "rollback", "iris", "--server", "box*", "--reason", " ")
    assert r.code == 1 and "give a reason" in r.err, r
    r = berth(capsys, "stop", "iris", "--server", "box*", "--json")  # stop needs no reason: it runs (and fails)
    assert r.code == 1 and "give a reason" not in r.err, r

    r = berth(capsys, "deploy", bundle, "--server", "box*", "--reason", "CHG-7")
    assert r.code == 0, r
    assert status_versions(capsys) == {"box1": "1.0.0", "box2": "1.0.0", "box3": "1.0.0"}
    group = [e for e in events(capsys, "deploy.group")]
    assert [e["outcome"] for e in group] == ["started", "ok"] and group[1]["reason"] == "CHG-7"
    assert {e["reason"] for e in events(capsys, "deploy") if e["action"] == "deploy"} == {"CHG-7"}


def test_a_group_rollback_and_stop_start_report_each_server(capsys, tmp_path, fleet):
    for name in ("web-1", "web-2", "web-10"):
        fleet(name)
    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "web-*").code == 0
    r = berth(capsys, "deploy", iris_copy(tmp_path, "1.1.0"), "--server", "web-*", "--parallel", "3")
    assert r.code == 0, r
    assert [line.split()[0] for line in r.out.splitlines()[1:]] == ["web-1", "web-2", "web-10"]  # natural order
    assert "deployed 1.1.0 (was 1.0.0)" in r.out
    r = berth(capsys, "deploy", iris_copy(tmp_path, "1.1.0"), "--server", "web-1", "--server", "web-2")
    assert r.code == 0 and r.out.count("unchanged (1.1.0 already current)") == 2, r

    r = berth(capsys, "rollback", "iris", "--server", "web-*", "--json")
    assert r.code == 0, r
    assert "rollback iris on 3 server(s), 3 at once" in r.err  # not the default 10 it could run
    assert set(r.json()["now"].values()) == {"rolled back to 1.0.0 (was 1.1.0)"}
    assert status_versions(capsys) == {"web-1": "1.0.0", "web-2": "1.0.0", "web-10": "1.0.0"}
    group = events(capsys, "rollback.group")
    assert [e["outcome"] for e in group] == ["started", "ok"] and group[0]["model"] == "iris"
    assert json.loads(group[1]["detail"])["outcomes"]["web-10"] == "rolled back to 1.0.0 (was 1.1.0)"
    assert sorted(e["server"] for e in events(capsys, "rollback") if e["action"] == "rollback"
                  and e["outcome"] == "ok") == ["web-1", "web-10", "web-2"]

    assert berth(capsys, "stop", "iris", "--server", "web-*").code == 0
    rows = berth(capsys, "status", "--json").json()
    assert {r["state"] for r in rows if r["server"].startswith("web-")} == {"stopped"}
    r = berth(capsys, "start", "iris", "--server", "web-1", "--server", "web-2", "--parallel", "1")
    assert r.code == 0 and r.out.count("started 1.0.0") == 2, r


def test_a_selector_that_picks_nothing_is_one_line_before_anything_runs(capsys, tmp_path, fleet):
    fleet("box1")
    r = berth(capsys, "deploy", iris_copy(tmp_path), "--server", "box1", "--server", "db-*")
    assert r.code == 1 and r.err == "berth: no server name matches 'db-*'; see `berth server list`\n", r
    r = berth(capsys, "rollback", "iris", "--server", "nosuch", "--server", "box1")
    assert r.code == 1 and "no server named 'nosuch'" in r.err, r
    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "box*", "--parallel", "0").code == 2
    for argv in (("deploy", iris_copy(tmp_path)), ("promote", "iris", "--from", "box1")):
        r = berth(capsys, *argv, "--server", "box*", "--parallel", "257")  # the read commands' bound, the same
        assert r.code == 2 and "--parallel: must be 1 to 256" in r.err, r
    assert events(capsys) == []
    r = berth(capsys, "deploy", tmp_path / "irs", "--server", "box*")  # a path that is not there: what to give
    assert r.code == 1 and r.err.splitlines()[-1].startswith(
        f"berth: {tmp_path / 'irs'}: no such file or folder; give a bundle folder (with berth.toml) or a .tar.gz of one"), r


def test_an_invalid_bundle_is_refused_once_before_any_server_starts(capsys, tmp_path, fleet):
    fleet("box1")
    fleet("box2")
    bundle = iris_copy(tmp_path)
    (bundle / "berth.toml").write_text('[model]\nname = "Bad Name"\n')
    r = berth(capsys, "deploy", bundle, "--server", "box*")
    assert r.code == 1 and "[box" not in r.err and r.out == "", r
    assert [(e["action"], e["outcome"]) for e in events(capsys)] == [("bundle.check", "failed")]


def test_ctrl_c_starts_no_new_server_prints_the_summary_and_exits_130(tmp_path, fleet, berth_home):
    for name in ("box1", "box2", "box3"):
        fleet(name)
    env = dict(os.environ, PYTHONPATH=str(REPO), BERTH_HOME=str(berth_home))
    proc = subprocess.Popen([sys.executable, "-m", "app", "deploy", str(iris_copy(tmp_path)), "--server", "box*",
                             "--parallel", "1", "--json"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    err = []
    for line in proc.stderr:
        err.append(line)
        if line.startswith("[box1] Checking the bundle"):
            proc.send_signal(signal.SIGINT)
            break
    rest, more = proc.communicate(timeout=120)
    err.append(more)
    assert proc.returncode == 130, "".join(err)
    summary = {s["server"]: s["state"] for s in json.loads(rest)["servers"]}
    assert summary["box1"] in ("cancelled", "ok") and summary["box2"] == summary["box3"] == "skipped", summary
    assert "no more servers were started: interrupted" in "".join(err)
    assert not any(line.startswith(("[box2] Checking", "[box3] Checking")) for line in err)
    ws = Workspace()
    group = [e for e in ws.audit.list() if e["action"] == "deploy.group"]
    assert [e["outcome"] for e in group] == ["cancelled", "started"]
    assert {e["server"] for e in ws.audit.list() if e["action"] == "deploy"} == {"box1"}


def test_a_group_over_real_sshd_servers_with_one_stopped_deploys_the_others(capsys, tmp_path, box, sshd_factory,
                                                                           stop_local_runners):
    down = sshd_factory()
    Workspace().add_server(ServerConfig(name="box-down", host=down.host, port=down.port, user=down.user,
                                        key_path=str(down.key_path), root=str(tmp_path / "down root")),
                           down.fingerprint)
    down.stop()
    r = berth(capsys, "deploy", iris_copy(tmp_path), "--server", "box*", "--server", "local", "--parallel", "3",
              "--max-failures", "1", "--json")
    assert r.code == 1, r
    summary = summary_of(r)
    assert {n: s["state"] for n, s in summary.items()} == {"box": "ok", "box-down": "failed", "local": "ok"}
    assert "refused" in summary["box-down"]["detail"]
    assert not r.json()["stopped"]  # one failure is within --max-failures 1: every server was tried
    rows = berth(capsys, "status", "--json")
    assert {x["server"]: x["version"] for x in rows.json()} == {"box": "1.0.0", "local": "1.0.0"}
    assert "box-down" in rows.err
