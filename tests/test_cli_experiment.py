"""`berth experiment start|status|stop` against the built-in `local` server, with real runners and
the real router: the exact options, bad input refused with one line before anything changes, the
model marked in `berth status`, a deploy refused while the experiment runs, and both ends audited."""
import pytest

from agent_kit import make_bundle, stop_all
from cli_kit import berth
from experiment_kit import MODEL, Client, close_all, stop_routers


@pytest.fixture
def local(berth_home):
    yield berth_home / "local"
    close_all()
    stop_routers(berth_home / "local")
    stop_all(berth_home / "local")


def bundle(tmp_path, version):
    return make_bundle(tmp_path / version, version=version, model_src=MODEL.format(version=version))


def status_row(capsys):
    return berth(capsys, "status", "--server", "local", "--json").json()[0]


def test_experiment_from_the_command_line(capsys, tmp_path, local):
    for version in ("1.0.0", "2.0.0"):
        assert berth(capsys, "deploy", bundle(tmp_path, version), "--server", "local").code == 0
    assert berth(capsys, "rollback", "echo", "--server", "local").code == 0
    start = ("experiment", "start", "echo", "--server", "local", "--b")

    for argv, code, said in (((*start, "2.0.0", "--weight", "1.5"), 1, "--weight 1.5 must be a number from 0 to 1"),
                             ((*start, "7.0.0", "--shadow"), 1, "has no release 7.0.0"),
                             ((*start, "2.0.0", "--canary", "5,25,50"), 1, "the last step must be 100"),
                             ((*start, "2.0.0", "--canary", "50,25,100"), 1, "increasing"),
                             ((*start, "2.0.0", "--shadow", "--sticky-header", "X-Id"), 1, "goes with --weight"),
                             ((*start, "2.0.0", "--weight", "0.5", "--step-requests", "5"), 1, "goes with --canary"),
                             ((*start, "1.0.0", "--shadow"), 1, "is A itself"),
                             ((*start, "2.0.0", "--canary", "5,x"), 2, "percentages separated by commas"),
                             ((*start, "2.0.0", "--shadow", "--weight", "0.5"), 2, "not allowed with")):
        r = berth(capsys, *argv)
        lines = r.err.strip().splitlines()
        assert r.code == code and said in lines[-1] and (code == 2 or len(lines) == 1), r  # 2: argparse's usage
    assert status_row(capsys)["experiment"] is None
    assert not [e for e in berth(capsys, "audit", "list", "--json").json() if e["action"].startswith("experiment")
                and e["outcome"] == "ok"]

    r = berth(capsys, *start, "2.0.0", "--weight", "0.5", "--sticky-header", "X-Customer-Id")
    assert r.code == 0 and "A/B: 1.0.0 50%, 2.0.0 50%, sticky on X-Customer-Id" in r.out, r
    row = status_row(capsys)
    assert row["experiment"] == "ab 50%"
    client = Client(row["port"])
    seen = {client.predict({"x": 1}, {"X-Customer-Id": "c%d" % i})[1] for i in range(40)}
    assert seen == {"1.0.0", "2.0.0"}

    r = berth(capsys, "experiment", "status", "echo", "--server", "local", "--json")
    st = r.json()
    assert {"mode", "state", "started", "a", "b", "agreement", "verdict"} <= set(st) and st["mode"] == "ab"
    assert set(st["a"]) == {"version", "weight", "requests", "errors", "rejected", "p50_ms", "p95_ms", "p99_ms",
                            "labelled"} and st["a"]["labelled"] == 0  # no label posted yet
    assert st["verdict"]["state"] in ("none", "better", "worse") and st["server"] == "local"
    r = berth(capsys, "experiment", "status", "echo", "--server", "local")
    assert r.code == 0 and "ab running since" in r.out and f"verdict: {st['verdict']['text']}" in r.out

    r = berth(capsys, "deploy", bundle(tmp_path, "3.0.0"), "--server", "local")
    assert r.code == 1 and "stop it first with `berth experiment stop echo" in r.err, r
    r = berth(capsys, *start, "2.0.0", "--shadow")
    assert r.code == 1 and "already has a ab experiment" in r.err

    r = berth(capsys, "experiment", "stop", "echo", "--server", "local", "--promote")
    assert r.code == 0 and "2.0.0 promoted" in r.out, r
    row = status_row(capsys)
    assert (row["version"], row["experiment"]) == ("2.0.0", None)
    assert {client.predict({"x": 1})[1] for _ in range(10)} == {"2.0.0"}
    r = berth(capsys, "experiment", "stop", "echo", "--server", "local")
    assert r.code == 1 and "no experiment running" in r.err

    events = berth(capsys, "audit", "list", "--json").json()
    done = [(e["action"], e["outcome"], e["version"]) for e in reversed(events) if e["action"].startswith("experiment")]
    assert done[-8:] == [("experiment.start", "started", ""), ("experiment.start", "ok", "2.0.0"),
                         ("experiment.start", "started", ""), ("experiment.start", "failed", ""),  # already has one
                         ("experiment.stop", "started", ""), ("experiment.stop", "ok", "2.0.0"),
                         ("experiment.stop", "started", ""), ("experiment.stop", "failed", "")], done
    assert berth(capsys, "audit", "verify").code == 0
