"""Roles enforced by the agent from the Unix user of the SSH session (docs/permissions.md), with real
users logging in over the loopback sshd and calling the agent by hand: no desktop code decides."""
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from agent_kit import deploy_request, make_bundle, stop_all
from perm_kit import UnixUsers, journal_events, own_blobs, shared_root
from sshd import SshServer, require_sshd

USERS = ["bpadmin", "bpviewer", "bpdeployer", "bpreleaser"]
ROLES = {"bpadmin": {"*": "admin"}, "@bpteam": {"*": "viewer"}, "bpdeployer": {"*": "deployer"},
         "bpreleaser": {"*": "releaser"}}


@pytest.fixture(scope="module")
def world():
    """(users, sshd, {"staging": root, "prod": root}); everything removed after."""
    require_sshd()
    if os.getuid() != 0:
        pytest.fail("the permission tests create Unix users: run them as root (CI does)", pytrace=False)
    base = Path(tempfile.mkdtemp(prefix="berth-perms-", dir="/tmp"))
    os.chmod(base, 0o755)
    (base / "homes").mkdir()
    (base / "sshd").mkdir(mode=0o755)
    srv = SshServer(folder=base / "sshd")
    os.chmod(srv.authorized_keys_path, 0o644)  # sshd reads it as the user logging in
    roots = {}
    try:
        with UnixUsers("bpteam", USERS, base / "homes") as users:
            admin = users.uid("bpadmin")
            roots["staging"] = shared_root(base / "staging", admin, users.gid(), {"roles": ROLES})
            roots["prod"] = shared_root(base / "prod", admin, users.gid(), {"production": True, "roles": ROLES})
            srv.start()
            try:
                yield users, srv, roots
            finally:
                srv.stop()
                for root in roots.values():
                    stop_all(root)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def deploy_as(users, srv, user, root, name, tmp_path):
    folder = make_bundle(tmp_path / name, name=name, example=json.dumps({"x": name}))
    req = own_blobs(root, deploy_request(root, folder), users.uid(user))
    return users.call(srv, user, "deploy", dict(req, root=str(root), actor={"user": "claims-admin", "host": "h"}))


def test_a_viewers_deploy_is_refused_by_the_agent_itself(world, tmp_path):
    users, srv, roots = world
    root = roots["staging"]
    result, error = deploy_as(users, srv, "bpviewer", root, "echo", tmp_path)
    assert result is None and error["code"] == "permission_denied", error
    assert "needs the deployer role" in error["message"] and "you (bpviewer) have viewer" in error["message"]
    assert "bpadmin" in error["message"] and error["admins"] == ["bpadmin"]
    assert not (root / "models" / "echo").exists()  # nothing changed on the server
    denied = [e for e in journal_events(root, "permission.denied") if e["unix_user"] == "bpviewer"]
    assert denied and denied[-1]["command"] == "deploy" and denied[-1]["needed"] == "deployer"
    assert denied[-1]["actor"]["user"] == "claims-admin"  # what the desktop said is kept, not believed
    status, error = users.call(srv, "bpviewer", "status", {"root": str(root)})  # a viewer action
    assert error is None and "models" in status


def test_whoami_is_the_unix_user_and_its_groups(world):
    users, srv, roots = world
    me, error = users.call(srv, "bpviewer", "whoami", {"root": str(roots["staging"]), "actor": {"user": "root"}})
    assert error is None
    assert me["user"] == "bpviewer" and "bpteam" in me["groups"] and me["roles"] == {"*": "viewer"}


def test_a_deployer_deploys_to_staging_but_not_to_production_and_a_releaser_can(world, tmp_path):
    users, srv, roots = world
    result, error = deploy_as(users, srv, "bpdeployer", roots["staging"], "alpha", tmp_path)
    assert error is None and result["version"] == "1.0.0", error
    result, error = deploy_as(users, srv, "bpdeployer", roots["prod"], "beta", tmp_path)
    assert error["code"] == "permission_denied" and "production server (model beta) needs the releaser role" \
        in error["message"] and "you (bpdeployer) have deployer" in error["message"]
    assert not (roots["prod"] / "models" / "beta").exists()
    result, error = deploy_as(users, srv, "bpreleaser", roots["prod"], "beta", tmp_path / "again")
    assert error is None and result["version"] == "1.0.0", error
    ok = [e for e in journal_events(roots["prod"], "deploy") if e["outcome"] == "ok"]
    assert [e["model"] for e in ok] == ["beta"]


def test_an_admin_grants_and_revokes_and_others_cannot(world):
    users, srv, roots = world
    root = str(roots["staging"])
    grant = {"root": root, "principal": "bpviewer", "role": "operator", "model": "alpha"}
    _, error = users.call(srv, "bpdeployer", "policy_grant", grant)
    assert error["code"] == "permission_denied" and "needs the admin role" in error["message"]
    result, error = users.call(srv, "bpadmin", "policy_grant", grant)
    assert error is None and result["after"]["bpviewer"] == {"alpha": "operator"}
    me, _ = users.call(srv, "bpviewer", "whoami", {"root": root})
    assert me["roles"] == {"*": "viewer", "alpha": "operator"}
    mode = os.stat(roots["staging"] / "policy.json")
    assert mode.st_uid == users.uid("bpadmin") and mode.st_mode & 0o777 == 0o644
    result, error = users.call(srv, "bpadmin", "policy_revoke", grant)
    assert error is None and "bpviewer" not in result["after"]
    me, _ = users.call(srv, "bpviewer", "whoami", {"root": root})
    assert me["roles"] == {"*": "viewer"}
    changed = journal_events(roots["staging"], "policy.changed")
    assert [e["unix_user"] for e in changed] == ["bpadmin", "bpadmin"]
    assert "bpviewer" not in changed[0]["before"] and changed[0]["after"]["bpviewer"] == {"alpha": "operator"}
    for bad in ({"principal": "x; rm -rf /"}, {"role": "god"}, {"model": "../etc"}):
        _, error = users.call(srv, "bpadmin", "policy_grant", dict(grant, **bad))
        assert error["code"] == "usage", (bad, error)


def test_a_policy_others_can_write_leaves_only_viewer_actions(world, tmp_path):
    users, srv, roots = world
    root = roots["staging"]
    os.chmod(root / "policy.json", 0o666)
    try:
        for user, command, req in (("bpreleaser", "stop", {"model": "alpha"}),
                                   ("bpadmin", "policy_grant", {"principal": "bpviewer", "role": "admin"})):
            _, error = users.call(srv, user, command, dict(req, root=str(root)))
            assert error["code"] == "permission_denied", error
            assert "the policy is not trusted" in error["message"] and "writable by others" in error["message"]
        shown, error = users.call(srv, "bpreleaser", "policy_show", {"root": str(root)})
        assert error is None and shown["state"] == "untrusted" and "chmod go-w" in shown["untrusted"]
    finally:
        os.chmod(root / "policy.json", 0o644)
    assert json.loads((root / "policy.json").read_text())["roles"] == ROLES


def test_every_denial_is_in_the_servers_journal(world):
    users, srv, roots = world
    denied = journal_events(roots["staging"], "permission.denied") + journal_events(roots["prod"], "permission.denied")
    assert sorted(e["command"] for e in denied) == ["deploy", "deploy", "policy_grant", "policy_grant", "stop"]
