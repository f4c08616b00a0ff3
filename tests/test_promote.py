"""`berth promote` and `require_staging_first` on real local servers (each its own root, real
runners): the exact release (same sha256) goes from one server to others in order, the first
failure stops it and that server keeps serving its old release; a production server takes only a
bundle that has run on staging; `berth bundle where` shows where a bundle ran."""
import json

import pytest

from agent_kit import http_json, stop_all
from cli_kit import berth, iris_copy, iris_input
from app.store.servers import ServerConfig
from app.workspace import Workspace


@pytest.fixture
def fleet(tmp_path, berth_home):
    roots = []
    ws = Workspace()

    def add(name, environment="staging"):
        root = tmp_path / "roots" / name
        roots.append(root)
        ws.servers.save(ServerConfig(name=name, kind="local", root=str(root), environment=environment))
        return name

    yield add
    for root in roots:
        if root.is_dir():
            stop_all(root)


def deployed(capsys, folder, server, *extra):
    r = berth(capsys, "deploy", folder, "--server", server, *extra)
    assert r.code == 0, r
    return r


def status(capsys, server):
    rows = berth(capsys, "status", "--server", server, "--json").json()
    return next(r for r in rows if r["model"] == "iris")


def current_sha(capsys, server):
    rows = berth(capsys, "releases", "iris", "--server", server, "--json").json()
    return next(r["sha256"] for r in rows if r["current"])


def test_promote_stops_at_the_first_failure_which_keeps_its_old_release(capsys, tmp_path, fleet):
    for name in ("src", "t1", "t2", "t3"):
        fleet(name)
    v1, v2 = iris_copy(tmp_path), iris_copy(tmp_path, "2.0.0")
    for name in ("src", "t1", "t2", "t3"):
        deployed(capsys, v1, name)
    deployed(capsys, v2, "src")
    other = iris_copy(tmp_path, "2.0.0")  # the same version with other content: t2 must refuse the promoted one
    (other / "notes.txt").write_text("not the promoted bundle\n")
    deployed(capsys, other, "t2")
    assert berth(capsys, "rollback", "iris", "--server", "t2", "--to", "1.0.0").code == 0
    source = dict(status(capsys, "src"), sha256=current_sha(capsys, "src"))

    r = berth(capsys, "promote", "iris", "--from", "src", "--to", "t1,t2,t3", "--json")
    assert r.code == 1, r
    out = r.json()
    assert (out["done"], out["failed"], out["not_started"]) == (["t1"], "t2", ["t3"])
    assert out["sha256"] == source["sha256"] and out["version"] == "2.0.0"
    assert "already on t2 with different content" in out["error"]
    assert "stopped at t2, which keeps the release it had" in r.err and "(done: t1; not started: t3)" in r.err
    assert current_sha(capsys, "t1") == source["sha256"]  # the exact content, not a rebuild
    kept = status(capsys, "t2")
    assert (kept["version"], kept["state"]) == ("1.0.0", "running")
    assert http_json(kept["port"], "POST", "/predict", json.loads(iris_input()))[0] == 200  # still serving
    assert status(capsys, "t3")["version"] == "1.0.0"
    events = berth(capsys, "audit", "list", "--json", "--action", "promote").json()
    ended = [e for e in events if e["outcome"] == "failed"]
    assert len(ended) == 1 and ended[0]["sha256"] == source["sha256"]
    assert json.loads(ended[0]["detail"])["done"] == ["t1"]

    r = berth(capsys, "promote", "iris", "--from", "src", "--to", "t3")
    assert r.code == 0 and r.out.strip().startswith("promoted iris 2.0.0 (sha256 %s) from src to t3" % source["sha256"][:12]), r
    assert current_sha(capsys, "t3") == source["sha256"]


@pytest.mark.parametrize("argv,said", [
    (["--to", "src"], "--to names src, the server promoted from"),
    (["--to", "t1,t1"], "give distinct server names"),
    (["--to", "nosuch"], "no server named 'nosuch'"),
    (["--to", "t1", "--version", "9.9.9"], "there is no release 9.9.9 of iris on this server (releases: 1.0.0)"),
])
def test_bad_promotions_are_refused_and_nothing_changes(capsys, tmp_path, fleet, argv, said):
    fleet("src"), fleet("t1")
    deployed(capsys, iris_copy(tmp_path), "src")
    r = berth(capsys, "promote", "iris", "--from", "src", *argv)
    assert r.code == 1 and said in r.err, r
    assert berth(capsys, "status", "--server", "t1", "--json").json() == []  # nothing reached t1


def test_require_staging_first_refuses_then_allows(capsys, tmp_path, fleet):
    fleet("stg"), fleet("dev", "development"), fleet("prd", "production")
    assert berth(capsys, "settings", "set", "require_staging_first", "true").code == 0
    v1 = iris_copy(tmp_path)
    r = berth(capsys, "deploy", v1, "--server", "prd")
    assert r.code == 1 and "prd is a production server and takes only bundles that have run on a staging server " \
                          "first (settings: require_staging_first)" in r.err and "has run on no server yet" in r.err, r
    deployed(capsys, v1, "dev")
    r = berth(capsys, "deploy", v1, "--server", "prd")
    assert r.code == 1 and "has run on dev (development): deploy it to a staging server first" in r.err
    assert berth(capsys, "status", "--server", "prd", "--json").json() == []  # nothing was deployed
    denied = berth(capsys, "audit", "list", "--json", "--action", "deploy", "--server", "prd").json()
    outcomes = [e["outcome"] for e in denied]
    assert outcomes.count("failed") == 2 and "ok" not in outcomes, outcomes

    deployed(capsys, v1, "stg")
    deployed(capsys, v1, "prd")  # it ran on staging now
    sha = current_sha(capsys, "stg")
    where = berth(capsys, "bundle", "where", sha[:12], "--json").json()
    assert [(w["server"], w["environment"]) for w in where] == [("dev", "development"), ("stg", "staging"),
                                                                ("prd", "production")]
    assert all(w["sha256"] == sha for w in where)
    table = berth(capsys, "bundle", "where", sha)
    assert "stg" in table.out and "staging" in table.out

    v2 = iris_copy(tmp_path, "2.0.0")
    deployed(capsys, v2, "stg")
    r = berth(capsys, "promote", "iris", "--from", "stg", "--to", "prd")  # promotion obeys the rule and passes it
    assert r.code == 0, r
    assert status(capsys, "prd")["version"] == "2.0.0"
    assert berth(capsys, "settings", "set", "require_staging_first", "false").code == 0


@pytest.mark.parametrize("sha,said", [("xyz", "is not a bundle sha256"), ("abc", "is not a bundle sha256")])
def test_bundle_where_refuses_what_is_not_a_hash(capsys, berth_home, sha, said):
    r = berth(capsys, "bundle", "where", sha)
    assert r.code == 1 and said in r.err


def test_bundle_where_of_an_unknown_hash_says_so(capsys, berth_home):
    r = berth(capsys, "bundle", "where", "0" * 64)
    assert r.code == 0 and "no server has run a bundle" in r.err
