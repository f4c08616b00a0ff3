"""Roles enforced by the agent from the Unix user of the SSH session (docs/permissions.md), with real
users logging in over the loopback sshd and calling the agent by hand: no desktop code decides."""
import json
import os
from pathlib import Path

import pytest

from agent_kit import deploy_request, make_bundle, stop_all
from perm_kit import RunNames, journal_events, own_blobs, shared_root, team

U = RunNames("bpadmin", "bpviewer", "bpdeployer", "bpreleaser", "bpteam")  # this run's logins
USERS = [U.bpadmin, U.bpviewer, U.bpdeployer, U.bpreleaser]
ROLES = {U.bpadmin: {"*": "admin"}, "@" + U.bpteam: {"*": "viewer"}, U.bpdeployer: {"*": "deployer"},
         U.bpreleaser: {"*": "releaser"}}


@pytest.fixture(scope="module")
def world():
    """(users, sshd, {"staging": root, "prod": root}); everything removed after."""
    with team("berth-perms-", {U.bpteam: USERS}) as (users, srv, base):
        admin = users.uid(U.bpadmin)
        roots = {"staging": shared_root(base / "staging", admin, users.gid(), {"roles": ROLES}),
                 "prod": shared_root(base / "prod", admin, users.gid(), {"production": True, "roles": ROLES})}
        try:
            yield users, srv, roots
        finally:
            for root in roots.values():
                stop_all(root)


def deploy_as(users, srv, user, root, name, tmp_path):
    folder = make_bundle(tmp_path / name, name=name, example=json.dumps({"x": name}))
    req = own_blobs(root, deploy_request(root, folder), users.uid(user))
    return users.call(srv, user, "deploy", dict(req, root=str(root), actor={"user": "claims-admin", "host": "h"}))


def test_a_viewers_deploy_is_refused_by_the_agent_itself(world, tmp_path):
    users, srv, roots = world
    root = roots["staging"]
    result, error = deploy_as(users, srv, U.bpviewer, root, "echo", tmp_path)
    assert result is None and error["code"] == "permission_denied", error
    assert "needs the deployer role" in error["message"] and f"you ({U.bpviewer}) have viewer" in error["message"]
    assert U.bpadmin in error["message"] and error["admins"] == [U.bpadmin]
    assert not (root / "models" / "echo").exists()  # nothing changed on the server
    denied = [e for e in journal_events(root, "permission.denied") if e["unix_user"] == U.bpviewer]
    assert denied and denied[-1]["command"] == "deploy" and denied[-1]["needed"] == "deployer"
    assert denied[-1]["actor"]["user"] == "claims-admin"  # what the desktop said is kept, not believed
    status, error = users.call(srv, U.bpviewer, "status", {"root": str(root)})  # a viewer action
    assert error is None and "models" in status


def test_whoami_is_the_unix_user_and_its_groups(world):
    users, srv, roots = world
    me, error = users.call(srv, U.bpviewer, "whoami", {"root": str(roots["staging"]), "actor": {"user": "root"}})
    assert error is None
    assert me["user"] == U.bpviewer and U.bpteam in me["groups"] and me["roles"] == {"*": "viewer"}


def test_a_deployer_deploys_to_staging_but_not_to_production_and_a_releaser_can(world, tmp_path):
    users, srv, roots = world
    result, error = deploy_as(users, srv, U.bpdeployer, roots["staging"], "alpha", tmp_path)
    assert error is None and result["version"] == "1.0.0", error
    result, error = deploy_as(users, srv, U.bpdeployer, roots["prod"], "beta", tmp_path)
    assert error["code"] == "permission_denied" and "production server (model beta) needs the releaser role" \
        in error["message"] and f"you ({U.bpdeployer}) have deployer" in error["message"]
    assert not (roots["prod"] / "models" / "beta").exists()
    result, error = deploy_as(users, srv, U.bpreleaser, roots["prod"], "beta", tmp_path / "again")
    assert error is None and result["version"] == "1.0.0", error
    ok = [e for e in journal_events(roots["prod"], "deploy") if e["outcome"] == "ok"]
    assert [e["model"] for e in ok] == ["beta"]


def test_an_admin_grants_and_revokes_and_others_cannot(world):
    users, srv, roots = world
    root = str(roots["staging"])
    grant = {"root": root, "principal": U.bpviewer, "role": "operator", "model": "alpha"}
    _, error = users.call(srv, U.bpdeployer, "policy_grant", grant)
    assert error["code"] == "permission_denied" and "needs the admin role" in error["message"]
    result, error = users.call(srv, U.bpadmin, "policy_grant", grant)
    assert error is None and result["after"][U.bpviewer] == {"alpha": "operator"}
    me, _ = users.call(srv, U.bpviewer, "whoami", {"root": root})
    assert me["roles"] == {"*": "viewer", "alpha": "operator"}
    mode = os.stat(roots["staging"] / "policy.json")
    assert mode.st_uid == users.uid(U.bpadmin) and mode.st_mode & 0o777 == 0o644
    result, error = users.call(srv, U.bpadmin, "policy_revoke", grant)
    assert error is None and U.bpviewer not in result["after"]
    me, _ = users.call(srv, U.bpviewer, "whoami", {"root": root})
    assert me["roles"] == {"*": "viewer"}
    changed = journal_events(roots["staging"], "policy.changed")
    assert [e["unix_user"] for e in changed] == [U.bpadmin, U.bpadmin]
    assert U.bpviewer not in changed[0]["before"] and changed[0]["after"][U.bpviewer] == {"alpha": "operator"}
    for bad in ({"principal": "x; rm -rf /"}, {"role": "god"}, {"model": "../etc"}):
        _, error = users.call(srv, U.bpadmin, "policy_grant", dict(grant, **bad))
        assert error["code"] == "usage", (bad, error)


def test_a_policy_others_can_write_leaves_only_viewer_actions(world, tmp_path):
    users, srv, roots = world
    root = roots["staging"]
    os.chmod(root / "policy.json", 0o666)
    try:
        for user, command, req in ((U.bpreleaser, "stop", {"model": "alpha"}),
                                   (U.bpadmin, "policy_grant", {"principal": U.bpviewer, "role": "admin"})):
            _, error = users.call(srv, user, command, dict(req, root=str(root)))
            assert error["code"] == "permission_denied", error
            assert "the policy is not trusted" in error["message"] and "writable by others" in error["message"]
        shown, error = users.call(srv, U.bpreleaser, "policy_show", {"root": str(root)})
        assert error is None and shown["state"] == "untrusted" and "chmod go-w" in shown["untrusted"]
    finally:
        os.chmod(root / "policy.json", 0o644)
    assert json.loads((root / "policy.json").read_text())["roles"] == ROLES


def test_every_denial_is_in_the_servers_journal(world):
    users, srv, roots = world
    denied = journal_events(roots["staging"], "permission.denied") + journal_events(roots["prod"], "permission.denied")
    assert sorted(e["command"] for e in denied) == ["deploy", "deploy", "policy_grant", "policy_grant", "stop"]


def add_login(world, name, user, root):
    """This test's Berth logs in to the loopback sshd as `user` (the desktop side of a real team)."""
    from app.store.servers import ServerConfig
    from app.workspace import Workspace

    users, srv, roots = world
    for path in (root / ".berth", *(root / ".berth").rglob("*")):  # the desktop installs its agent in .berth and
        os.chown(path, users.uid(user), -1)  # makes that folder 0700: one desktop user per root (docs/permissions.md)
    Workspace().add_server(ServerConfig(name=name, host=srv.host, port=srv.port, user=user,
                                        key_path=str(srv.key_path), root=str(root)), srv.fingerprint)


@pytest.mark.slow  # over 10 s: the CLI's connections as real users
def test_the_cli_says_who_you_are_and_records_a_refused_deploy_in_the_desktops_audit(world, capsys, tmp_path):
    from cli_kit import berth

    users, srv, roots = world
    root = shared_root(Path(roots["staging"]).parent / "desk", users.uid(U.bpadmin), users.gid(), {"roles": ROLES})
    add_login(world, "team", U.bpviewer, root)
    r = berth(capsys, "whoami", "--server", "team", "--json")
    assert r.code == 0 and r.json()["user"] == U.bpviewer and r.json()["roles"] == {"*": "viewer"}, r
    assert U.bpteam in r.json()["groups"]
    r = berth(capsys, "deploy", make_bundle(tmp_path / "echo", name="echo", example='{"x": "desk"}'), "--server", "team")
    assert r.code == 1 and f"needs the deployer role; you ({U.bpviewer}) have viewer" in r.err and U.bpadmin in r.err, r
    assert "Traceback" not in r.err and not (root / "models" / "echo").exists()
    events = berth(capsys, "audit", "list", "--json").json()
    mine = [e for e in events if e["action"] == "permission.denied"]
    assert len(mine) == 1 and mine[0]["server"] == "team" and "deployer" in mine[0]["detail"], events
    assert any(e["action"] == "deploy" and e["outcome"] == "failed" for e in events)
    served = [e for e in journal_events(root, "permission.denied") if e["unix_user"] == U.bpviewer]
    assert len(served) == 1 and served[0]["command"] == "deploy"
    assert served[0]["id"] == mine[0]["id"]  # one event on both sides: importing the journal adds no copy


@pytest.mark.slow  # over 10 s: the CLI's connections as real users
def test_the_cli_grants_shows_and_revokes_as_an_admin(world, capsys):
    from cli_kit import berth

    users, srv, roots = world
    root = shared_root(Path(roots["staging"]).parent / "deskadmin", users.uid(U.bpadmin), users.gid(), None)
    add_login(world, "mine", U.bpadmin, root)
    r = berth(capsys, "policy", "show", "--server", "mine", "--json")
    assert r.code == 0 and r.json()["state"] == "none", r
    r = berth(capsys, "policy", "grant", "@" + U.bpteam, "deployer", "--server", "mine", "--model", "fraud")
    assert r.code == 0 and f"granted deployer @{U.bpteam} on fraud" in r.out, r
    shown = berth(capsys, "policy", "show", "--server", "mine", "--json").json()
    assert shown["state"] == "trusted" and shown["roles"] == {U.bpadmin: {"*": "admin"}, "@" + U.bpteam: {"fraud": "deployer"}}
    r = berth(capsys, "policy", "show", "--server", "mine")
    assert "@" + U.bpteam in r.out and "fraud" in r.out and "not production" in r.out, r
    r = berth(capsys, "policy", "revoke", "@" + U.bpteam, "deployer", "--server", "mine", "--model", "fraud")
    assert r.code == 0, r
    r = berth(capsys, "policy", "production", "true", "--server", "mine")
    assert r.code == 0 and "production: true" in r.out, r
    assert "(a production server)" in berth(capsys, "whoami", "--server", "mine").out
    for bad in (["grant", "bob smith", "viewer"], ["grant", "bob", "superuser"], ["grant", "bob", "viewer", "--model", "A/B"]):
        r = berth(capsys, "policy", *bad, "--server", "mine")
        assert r.code == 1 and "invalid" in r.err, (bad, r)
    changed = [e for e in berth(capsys, "audit", "list", "--json").json() if e["action"] == "policy.changed"]
    assert [e["outcome"] for e in changed].count("ok") == 3
    journal = journal_events(root, "policy.changed")
    assert {e["id"] for e in journal} <= {e["id"] for e in changed}
    r = berth(capsys, "whoami", "--server", "mine")
    assert r.code == 0 and U.bpadmin in r.out and "admin on every model" in r.out, r
