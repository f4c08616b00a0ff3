"""Four eyes for production, enforced by the agent (docs/permissions.md): real Unix users (two releasers,
a deployer, an admin) log in over the loopback sshd and call the agent by hand, so no desktop code
decides; then the CLI on each side (`berth deploy` waits, `berth approvals`, `berth approve`)."""
import json
import os
import time

import pytest

from agent_kit import deploy_request, http_json, make_bundle, stop_all
from perm_kit import RunNames, journal_events, own_blobs, shared_root, team

pytestmark = pytest.mark.slow  # every test here is over 10 s: real users, deploys, the CLI on two desktops
U = RunNames("bfadmin", "bfrel1", "bfrel2", "bfdep", "bpfour")  # this run's logins
USERS = [U.bfadmin, U.bfrel1, U.bfrel2, U.bfdep]
ROLES = {U.bfadmin: {"*": "admin"}, U.bfrel1: {"*": "releaser"}, U.bfrel2: {"*": "releaser"},
         U.bfdep: {"*": "deployer"}}


@pytest.fixture(scope="module")
def world():
    """(users, sshd, prod root) with fraud 1.0.0 serving, deployed by bfrel2 before four eyes was on."""
    with team("berth-4eyes-", {U.bpfour: USERS}) as (users, srv, base):
        root = shared_root(base / "prod", users.uid(U.bfadmin), users.gid(), {"production": True, "roles": ROLES})
        try:
            result, error = deploy_as(users, srv, U.bfrel2, root, "1.0.0", base / "b1")
            assert error is None, error
            _, error = users.call(srv, U.bfadmin, "policy_set", {"root": str(root), "four_eyes": True})
            assert error is None, error
            yield users, srv, root
        finally:
            stop_all(root)


def deploy_as(users, srv, user, root, version, folder, **extra):
    bundle = make_bundle(folder, name="fraud", version=version)
    req = own_blobs(root, deploy_request(root, bundle), users.uid(user))
    return users.call(srv, user, "deploy", dict(req, root=str(root), actor={"user": user, "host": "desk"}, **extra))


def serving(root):
    port = json.loads((root / "models" / "fraud" / "endpoint.json").read_text())["port"]
    return http_json(port, "POST", "/predict", 1)[1]["version"]


def test_a_four_eyes_deploy_waits_until_another_releaser_approves_it(world, tmp_path):
    users, srv, root = world
    _, error = deploy_as(users, srv, U.bfrel1, root, "2.0.0", tmp_path / "b2", reason="new fraud rules",
                         event_ids={"requested": "a1" * 16})
    assert error["code"] == "approval_pending", error
    rid = error["request"]
    assert f"waiting for approval {rid}" in error["message"] and "deploy fraud 2.0.0" in error["message"]
    assert serving(root) == "1.0.0" and not (root / "models" / "fraud" / "releases" / "2.0.0").exists()
    listed, error = users.call(srv, U.bfdep, "approvals", {"root": str(root)})  # a read: any role
    mine = [r for r in listed["requests"] if r["id"] == rid]
    assert mine and mine[0]["state"] == "pending" and mine[0]["requested_by"] == U.bfrel1 and \
        mine[0]["version"] == "2.0.0" and "in place of the current release" in mine[0]["what"], listed

    _, error = users.call(srv, U.bfrel1, "approve", {"root": str(root), "id": rid, "model": "fraud"})
    assert error["code"] == "permission_denied" and f"you ({U.bfrel1}) asked for {rid} yourself" in error["message"]
    _, error = users.call(srv, U.bfdep, "approve", {"root": str(root), "id": rid, "model": "fraud"})
    assert error["code"] == "permission_denied" and "needs the releaser role" in error["message"]
    _, error = users.call(srv, U.bfrel2, "approve", {"root": str(root), "id": rid, "model": "iris"})
    assert error["code"] == "usage" and "is for model fraud" in error["message"]  # what was shown, or nothing
    assert serving(root) == "1.0.0"

    result, error = users.call(srv, U.bfrel2, "approve", {"root": str(root), "id": rid, "model": "fraud",
                                                          "reason": "looked at it", "version": "6.6.6",
                                                          "sha256": "0" * 64, "files": []})
    assert error is None and result["version"] == "2.0.0" and result["approval"] == rid, error
    assert serving(root) == "2.0.0"
    _, error = users.call(srv, U.bfrel2, "approve", {"root": str(root), "id": rid, "model": "fraud"})
    assert error["code"] == "already_decided" and f"already approved by {U.bfrel2}" in error["message"]

    requested = [e for e in journal_events(root, "approval.requested") if e["request"] == rid]
    assert len(requested) == 1 and requested[0]["id"] == "a1" * 16 and requested[0]["unix_user"] == U.bfrel1
    assert requested[0]["outcome"] == "pending" and requested[0]["reason"] == "new fraud rules"
    approved = [e for e in journal_events(root, "approval.approved") if e["request"] == rid]
    assert len(approved) == 1 and approved[0]["unix_user"] == U.bfrel2 and approved[0]["requested_by"] == U.bfrel1
    done = [e for e in journal_events(root, "deploy") if e.get("approval") == rid]
    assert [e["outcome"] for e in done] == ["started", "ok"] and done[1]["version"] == "2.0.0"
    assert done[1]["sha256"] == requested[0]["sha256"] and done[1]["reason"] == "new fraud rules"
    denied = [e for e in journal_events(root, "permission.denied") if e.get("request") == rid]
    assert sorted(e["unix_user"] for e in denied) == [U.bfrel1]  # bfdep's was refused before the request was read
    assert [e for e in journal_events(root, "permission.denied") if e["unix_user"] == U.bfdep]


def test_an_expired_request_cannot_be_approved_and_a_rejected_one_never_runs(world):
    users, srv, root = world
    _, error = users.call(srv, U.bfrel1, "rollback", {"root": str(root), "model": "fraud"})
    assert error["code"] == "usage" and "--to VERSION" in error["message"]  # bfrel2's releases are private to it
    _, error = users.call(srv, U.bfrel1, "rollback", {"root": str(root), "model": "fraud", "to": "1.0.0",
                                                      "expires_s": 0.5})
    assert error["code"] == "approval_pending", error
    rid = error["request"]
    time.sleep(0.6)  # the time limit itself is under test: nothing to wait for but the clock
    _, error = users.call(srv, U.bfrel2, "approve", {"root": str(root), "id": rid, "model": "fraud"})
    assert error["code"] == "approval_expired" and "expired at" in error["message"] and U.bfrel1 in error["message"]
    _, error = users.call(srv, U.bfrel2, "approve", {"root": str(root), "id": rid, "model": "fraud"})
    assert error["code"] == "already_decided" and "already expired" in error["message"]
    assert serving(root) == "2.0.0"
    assert [e["outcome"] for e in journal_events(root, "approval.expired") if e["request"] == rid] == ["expired"]

    _, error = users.call(srv, U.bfrel2, "rollback", {"root": str(root), "model": "fraud"})
    rid2 = error["request"]
    result, error = users.call(srv, U.bfrel2, "approve", {"root": str(root), "id": rid2, "reject": True})
    assert error is None and result["decision"] == "rejected", error  # the requester may withdraw it
    listed, _ = users.call(srv, U.bfrel1, "approvals", {"root": str(root)})
    states = {r["id"]: r["state"] for r in listed["requests"]}
    assert states[rid] == "expired" and states[rid2] == "rejected" and listed["four_eyes"] == {"*": True}
    assert serving(root) == "2.0.0" and journal_events(root, "approval.rejected")[-1]["request"] == rid2


def test_a_request_changed_on_disk_or_a_bad_id_is_refused(world):
    users, srv, root = world
    _, error = users.call(srv, U.bfrel1, "rollback", {"root": str(root), "model": "fraud", "to": "1.0.0"})
    rid = error["request"]
    path = root / ".berth" / "approvals" / f"{rid}.json"
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    path.write_text(path.read_text().replace('"to": "1.0.0"', '"to": "2.0.0"'))  # as its owner could
    _, error = users.call(srv, U.bfrel2, "approve", {"root": str(root), "id": rid})
    assert error["code"] == "approval_tampered", error
    for bad in ("../../etc", "x" * 12, 12):
        _, error = users.call(srv, U.bfrel2, "approve", {"root": str(root), "id": bad})
        assert error["code"] == "usage" and "invalid approval id" in error["message"], error
    _, error = users.call(srv, U.bfrel2, "approve", {"root": str(root), "id": "0" * 12})
    assert error["code"] == "not_found"
    _, error = users.call(srv, U.bfrel1, "rollback", {"root": str(root), "model": "fraud", "expires_s": 10 ** 9})
    assert error["code"] == "usage" and "7 days" in error["message"]
    assert serving(root) == "2.0.0"

    _, error = users.call(srv, U.bfrel1, "rollback", {"root": str(root), "model": "fraud", "to": "1.0.0",
                                                      "reason": "2.0.0 flags too much"})
    rid = error["request"]
    result, error = users.call(srv, U.bfrel2, "approve", {"root": str(root), "id": rid})
    assert error is None and result["version"] == "1.0.0" and result["command"] == "rollback", error
    assert serving(root) == "1.0.0"
    done = [e for e in journal_events(root, "rollback") if e.get("approval") == rid]
    assert [e["outcome"] for e in done] == ["started", "ok"] and done[1]["reason"] == "2.0.0 flags too much"


def add_login(world, name, user):
    """This test's Berth logs in as `user` (the desktop installs its agent into the root's .berth and
    keeps that folder to itself: one desktop user at a time per root, docs/permissions.md)."""
    from app.store.servers import ServerConfig
    from app.workspace import Workspace

    users, srv, root = world
    for path in (root / ".berth", *(root / ".berth").rglob("*")):
        os.chown(path, users.uid(user), -1)
    Workspace().add_server(ServerConfig(name=name, host=srv.host, port=srv.port, user=user, environment="production",
                                        key_path=str(srv.key_path), root=str(root)), srv.fingerprint)


def test_the_cli_deploy_waits_and_another_releasers_cli_approves_it(world, capsys, tmp_path, monkeypatch):
    from cli_kit import berth

    users, srv, root = world
    add_login(world, "prod1", U.bfrel1)
    bundle = make_bundle(tmp_path / "churn", name="churn", version="1.0.0")
    r = berth(capsys, "deploy", bundle, "--server", "prod1", "--reason", "first churn model")
    assert r.code == 1 and "waiting for approval" in r.err and "--server prod1`" in r.err, r
    assert "Traceback" not in r.err and not (root / "models" / "churn" / "current").exists()
    mine = berth(capsys, "audit", "list", "--json").json()
    assert sorted((e["action"], e["outcome"]) for e in mine if e["model"] == "churn") == \
        [("approval.requested", "pending"), ("deploy", "pending"), ("deploy", "started")], mine
    asked = next(e for e in mine if e["action"] == "approval.requested")

    monkeypatch.setenv("BERTH_HOME", str(tmp_path / "second-desk"))  # another person's Berth
    add_login(world, "prod2", U.bfrel2)
    listing = berth(capsys, "approvals", "--server", "prod2", "--json").json()
    rid = next(q["id"] for q in listing["requests"] if q["model"] == "churn" and q["state"] == "pending")
    assert f"`berth approve {rid} --server prod1`" in r.err
    r = berth(capsys, "approvals", "--server", "prod2")
    assert r.code == 0 and rid in r.out and "deploy churn 1.0.0" in r.out and U.bfrel1 in r.out, r
    r = berth(capsys, "approve", rid, "--server", "prod2", "--reason", "reviewed the bundle")
    assert r.code == 0 and f"approved {rid}" in r.out, r
    port = json.loads((root / "models" / "churn" / "endpoint.json").read_text())["port"]
    assert http_json(port, "POST", "/predict", 1)[1]["version"] == "1.0.0"
    r = berth(capsys, "approve", rid, "--server", "prod2")
    assert r.code == 1 and f"already approved by {U.bfrel2}" in r.err, r
    r = berth(capsys, "approve", "not-an-id", "--server", "prod2")
    assert r.code == 1 and "invalid approval id" in r.err, r

    theirs = berth(capsys, "audit", "list", "--json").json()
    decisions = [e["outcome"] for e in theirs if e["action"] == "approval.approved"]
    assert sorted(decisions) == ["ok", "refused", "started", "started"], theirs  # the second one decided nothing
    approved = [e for e in theirs if e["action"] == "approval.approved" and e["outcome"] == "ok"]
    assert len(approved) == 1 and approved[0]["reason"] == "reviewed the bundle" and rid in approved[0]["detail"]
    deployed = [e for e in theirs if e["action"] == "deploy" and e["model"] == "churn"]
    assert [e["outcome"] for e in deployed] == ["ok", "started"], theirs  # newest first
    journal = {e["id"]: e for e in map(json.loads, (root / "journal.jsonl").read_text().splitlines())}
    assert journal[asked["id"]]["action"] == "approval.requested" and journal[asked["id"]]["request"] == rid
    assert journal[approved[0]["id"]]["action"] == "approval.approved"  # one event on both sides
    assert all(journal[e["id"]]["approval"] == rid for e in deployed)
