"""`berth server init-shared-root`: a root several real Unix users share over the loopback sshd
(docs/permissions.md, "A shared root"). The deployer deploys; the viewer reads but cannot write a
release even by hand; a user outside the group reads nothing, the request log included."""
import json
import os
import shlex
import stat

import pytest

from agent_kit import deploy_request, make_bundle, stop_all
from perm_kit import RunNames, own_blobs, shell, team as real_team

U = RunNames("bsowner", "bsdeployer", "bsviewer", "bsoutsider", "bsteam", "bsother")  # this run's logins
TEAM = [U.bsowner, U.bsdeployer, U.bsviewer]


@pytest.fixture(scope="module")
def world():
    """(users, sshd, root): the root made by bsowner (0755, as `mkdir` leaves it), not shared yet;
    bsoutsider is in another group."""
    with real_team("berth-shared-", {U.bsteam: TEAM, U.bsother: [U.bsoutsider]}) as (users, srv, base):
        root = base / "srv-berth"
        root.mkdir(mode=0o755)
        os.chown(root, users.uid(U.bsowner), users.gid(U.bsteam))
        try:
            yield users, srv, root
        finally:
            stop_all(root)


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture(scope="module")
def shared(world):
    team, srv, root = world
    result, error = team.call(srv, U.bsowner, "init_shared_root", {"root": str(root), "group": U.bsteam})
    assert error is None, error
    return result


@pytest.mark.slow  # over 10 s as real users (the last two need the grants and the deploy before them)
def test_init_sets_the_root_up_for_the_group_and_a_second_run_changes_nothing(world, shared):
    team, srv, root = world
    assert shared["changes"] and any("mode of %s: 0755 -> 2750" % root in c for c in shared["changes"]), shared
    for rel, want in (("", 0o2750), (".berth", 0o2770), (".berth/blobs", 0o2770), (".berth/agent", 0o3770),
                      (".berth/approvals", 0o3770), ("models", 0o3770), ("journal.jsonl", 0o660), (".berth/lock", 0o660)):
        st = os.lstat(root / rel)
        assert (stat.S_IMODE(st.st_mode), st.st_gid) == (want, team.gid()), rel
    assert os.stat(root).st_uid == team.uid(U.bsowner)
    again, error = team.call(srv, U.bsowner, "init_shared_root", {"root": str(root), "group": U.bsteam})
    assert error is None and again["changes"] == [], again
    grants = {U.bsdeployer: "deployer", "@" + U.bsteam: "viewer"}
    for who, role in grants.items():
        _, error = team.call(srv, U.bsowner, "policy_grant", {"root": str(root), "principal": who, "role": role})
        assert error is None, error
    assert mode(root / "policy.json") == 0o640 and os.stat(root / "policy.json").st_gid == team.gid()
    again, _ = team.call(srv, U.bsowner, "init_shared_root", {"root": str(root), "group": U.bsteam})
    assert again["changes"] == [], again  # the agent writes the policy as the shared root wants it
    me, error = team.call(srv, U.bsviewer, "whoami", {"root": str(root)})
    assert error is None and me["roles"] == {"*": "viewer"} and me["policy"] == "trusted", (me, error)


@pytest.mark.parametrize("user, req, code, words", [
    (U.bsowner, {"group": "nosuchgroup"}, "usage", "there is no group nosuchgroup"),
    (U.bsowner, {"group": U.bsother}, "usage", f"you ({U.bsowner}) are not in the group {U.bsother}"),
    (U.bsowner, {"group": "@" + U.bsteam}, "usage", "invalid group"),
    (U.bsowner, {"group": "x;rm -rf /"}, "usage", "invalid group"),
    (U.bsdeployer, {"group": U.bsteam}, "permission_denied", "needs the admin role"),
])
def test_init_refuses(world, shared, user, req, code, words):
    team, srv, root = world
    _, error = team.call(srv, user, "init_shared_root", dict(req, root=str(root)))
    assert error["code"] == code and words in error["message"], error


def test_init_refuses_a_root_of_someone_else_and_a_link_in_the_way(world, shared, tmp_path):
    team, srv, root = world
    theirs = root.parent / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, team.uid(U.bsdeployer), team.gid())
    _, error = team.call(srv, U.bsowner, "init_shared_root", {"root": str(theirs), "group": U.bsteam})
    assert error["code"] == "permission_denied", error  # bsowner is a viewer there (no policy, not the owner)
    linked = root.parent / "linked"
    linked.mkdir(mode=0o755)
    os.chown(linked, team.uid(U.bsowner), team.gid())
    target = root.parent / "elsewhere"
    target.mkdir(mode=0o700)
    os.symlink(target, linked / "models")
    _, error = team.call(srv, U.bsowner, "init_shared_root", {"root": str(linked), "group": U.bsteam})
    assert error["code"] == "usage" and "models is a symbolic link" in error["message"], error
    assert mode(target) == 0o700 and mode(linked) == 0o755 and not (linked / ".berth").exists()


@pytest.mark.slow  # over 10 s as real users (the last two need the grants and the deploy before them)
def test_the_deployer_deploys_the_viewer_reads_but_cannot_write_a_release_and_an_outsider_reads_nothing(
        world, shared, tmp_path):
    team, srv, root = world
    folder = make_bundle(tmp_path / "echo", name="echo", example=json.dumps({"x": 1}))
    req = own_blobs(root, deploy_request(root, folder), team.uid(U.bsdeployer))
    result, error = team.call(srv, U.bsdeployer, "deploy", dict(req, root=str(root)))
    assert error is None and result["version"] == "1.0.0", error
    status, error = team.call(srv, U.bsviewer, "status", {"root": str(root)})
    assert error is None and [m["model"] for m in status["models"]] == ["echo"], (status, error)
    logs, error = team.call(srv, U.bsviewer, "logs", {"root": str(root), "model": "echo"})
    assert error is None and logs, error
    release = root / "models" / "echo" / "releases" / "1.0.0"
    for where in (release.parent, release):
        assert os.stat(where).st_gid == team.gid() and mode(where) & 0o070 == 0o050, (where, oct(mode(where)))
        code, err = shell(srv, U.bsviewer, "touch " + shlex.quote(str(where / "by-hand")))
        assert code != 0 and "Permission denied" in err, err
    code, err = shell(srv, U.bsdeployer, "touch " + shlex.quote(str(release.parent / "by-hand")))
    assert code == 0, err  # its owner could (the agent refuses what the role does not allow)
    os.unlink(release.parent / "by-hand")
    requests = root / "models" / "echo" / "logs" / "requests.jsonl"
    assert requests.is_file() and mode(requests) == 0o640, oct(mode(requests))
    code, err = shell(srv, U.bsviewer, "head -c1 " + shlex.quote(str(requests)))
    assert code == 0, err  # a viewer may read the request log
    code, err = shell(srv, U.bsoutsider, "head -c1 " + shlex.quote(str(requests)))
    assert code != 0 and "Permission denied" in err, err
    _, error = team.call(srv, U.bsoutsider, "status", {"root": str(root)})
    assert error is not None, "a user outside the group read the shared root's status"


def add_login(world, name, user, root):
    from app.store.servers import ServerConfig
    from app.workspace import Workspace

    team, srv, _ = world
    Workspace().add_server(ServerConfig(name=name, host=srv.host, port=srv.port, user=user,
                                        key_path=str(srv.key_path), root=str(root)), srv.fingerprint)


@pytest.mark.slow  # over 10 s as real users (the last two need the grants and the deploy before them)
def test_through_the_cli_the_owner_shares_a_root_and_each_member_gets_an_agent_of_their_own(world, capsys, tmp_path):
    team, srv, shared_root = world
    root = shared_root.parent / "cli-root"
    root.mkdir(mode=0o755)
    os.chown(root, team.uid(U.bsowner), team.gid())
    try:
        cli_story(world, capsys, tmp_path, root)
    finally:
        stop_all(root)


def cli_story(world, capsys, tmp_path, root):
    from cli_kit import berth

    team = world[0]
    add_login(world, "own", U.bsowner, root)  # its agent in .berth/agent/<version>, private (0700) as always
    r = berth(capsys, "server", "init-shared-root", "own", "--group", U.bsteam)
    assert r.code == 0 and f"mode of {root}: 0755 -> 2750" in r.out and f"is shared by the group {U.bsteam}" in r.out, r
    r = berth(capsys, "server", "init-shared-root", "own", "--group", U.bsteam)
    assert r.code == 0 and "nothing changed" in r.out, r
    r = berth(capsys, "server", "init-shared-root", "own", "--group", "no-such-team")
    assert r.code == 1 and "there is no group no-such-team" in r.err and "Traceback" not in r.err, r
    r = berth(capsys, "server", "init-shared-root", "own", "--group", "@" + U.bsteam)
    assert r.code == 2 and "invalid group" in r.err, r  # refused before connecting
    r = berth(capsys, "server", "init-shared-root", "own", "--group", U.bsteam, "--writers", "@w")
    assert r.code == 2 and "invalid group" in r.err, r
    add_login(world, "dep", U.bsdeployer, root)  # now it can: its own agent in .berth/agent/bsdeployer/
    r = berth(capsys, "policy", "grant", U.bsdeployer, "deployer", "--server", "own")
    assert r.code == 0, r
    r = berth(capsys, "deploy", make_bundle(tmp_path / "echo", name="echo", example='{"x": 1}'), "--server", "dep")
    assert r.code == 0, r
    agents = root / ".berth" / "agent"
    mine = {p.name: (p.stat().st_uid, mode(p)) for p in agents.iterdir() if p.name.startswith("bs")}
    assert mine == {U.bsowner: (team.uid(U.bsowner), 0o700), U.bsdeployer: (team.uid(U.bsdeployer), 0o700)}, mine
    assert mode(agents) == 0o3770 and mode(root / ".berth") == 0o2770  # installing an agent keeps them the group's
    r = berth(capsys, "status", "--server", "own", "--json")
    assert r.code == 0 and "echo" in r.out, r
    actions = [e["action"] for e in berth(capsys, "audit", "list", "--json").json() if e["outcome"] == "ok"]
    assert actions.count("root.shared") == 2, actions  # one ok per run; only the journal skips a no-op


@pytest.mark.slow  # over 10 s as real users (the last two need the grants and the deploy before them)
def test_another_member_changing_a_model_they_did_not_deploy_is_told_whose_it_is(world, shared, tmp_path):
    team, srv, root = world
    if not (root / "models" / "echo").exists():
        pytest.skip("needs the deployer's echo (the test above)")
    folder = make_bundle(tmp_path / "echo2", name="echo", version="2.0.0", example=json.dumps({"x": 2}))
    req = own_blobs(root, deploy_request(root, folder), team.uid(U.bsowner))
    _, error = team.call(srv, U.bsowner, "deploy", dict(req, root=str(root)))  # an admin: the role allows it
    assert error["code"] == "permission_denied" and f"it belongs to {U.bsdeployer}" in error["message"], error
    assert "Traceback" not in error["message"] and not (root / "models" / "echo" / "releases" / "2.0.0").exists()
