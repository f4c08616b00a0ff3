"""Four eyes in-process (the tests run as root; with a policy, root is a user like any other): which
changes are held, and the policy's `four_eyes` entries. Two real users are in test_approvals_users.py."""
import json
import os
import pwd

import pytest

from agent_kit import call as agent_call

ME = pwd.getpwuid(os.getuid()).pw_name


def call(root, command, **payload):
    result, error, _ = agent_call(root, command, **payload)
    return result, error


def policy(root, **data):
    root.mkdir(exist_ok=True)
    (root / "policy.json").write_text(json.dumps(dict(data, roles={ME: {"*": "admin"}})))
    os.chmod(root / "policy.json", 0o644)


@pytest.mark.parametrize("production, four_eyes, asked, model, held", [
    (True, {"*": True}, False, "fraud", True),
    (True, {"*": True, "iris": False}, False, "iris", False),  # a model's own entry wins over "*"
    (True, {"fraud": True}, False, "iris", False),
    (False, {"*": True}, False, "fraud", False),  # four eyes is for production servers
    (True, {}, True, "fraud", True),  # the desktop's four_eyes_production asks for it up front
    (False, {}, True, "fraud", True),  # the desktop decides what it calls production
])
def test_which_changes_wait(tmp_path, production, four_eyes, asked, model, held):
    policy(tmp_path, production=production, four_eyes=four_eyes)
    _, error = call(tmp_path, "rollback", model=model, to="1.0.0", four_eyes=asked)
    assert (error["code"] == "approval_pending") is held, error
    _, error = call(tmp_path, "start", model=model)  # an operator's action is never held
    assert error["code"] == "nothing_deployed", error


def test_ending_an_experiment_with_promote_waits_like_a_deploy(tmp_path):
    """--promote makes B current: without this, a releaser could put B in production alone."""
    policy(tmp_path, production=True, four_eyes={"*": True})
    _, error = call(tmp_path, "experiment_stop", model="fraud", promote=True)
    assert error["code"] == "approval_pending", error
    assert "make its B current" in error["message"]
    _, error = call(tmp_path, "experiment_stop", model="fraud")  # A keeps the port: nothing new serves
    assert error["code"] != "approval_pending", error


def test_the_requester_cannot_approve_and_may_withdraw(tmp_path):
    policy(tmp_path, production=True, four_eyes={"*": True})
    _, error = call(tmp_path, "rollback", model="fraud", to="1.0.0", expires_s=60, reason="bad night")
    rid = error["request"]
    assert "roll fraud back from nothing to 1.0.0" in error["message"]
    _, error = call(tmp_path, "approve", id=rid)
    assert error["code"] == "permission_denied" and "yourself" in error["message"]
    result, error = call(tmp_path, "approve", id=rid, reject=True, reason="not needed")
    assert error is None and result["decision"] == "rejected"
    listed, _ = call(tmp_path, "approvals")
    assert [(r["id"], r["state"], r["decided_by"], r["reason"]) for r in listed["requests"]] == \
        [(rid, "rejected", ME, "bad night")]


def test_an_admin_sets_four_eyes_per_server_and_model(tmp_path):
    policy(tmp_path, production=True)
    result, error = call(tmp_path, "policy_set", four_eyes=True)
    assert error is None and result["after"] == {"*": True}, error
    result, _ = call(tmp_path, "policy_set", four_eyes=False, model="iris")
    assert result["before"] == {"*": True} and result["after"] == {"*": True, "iris": False}
    shown, _ = call(tmp_path, "policy_show")
    assert shown["four_eyes"] == {"*": True, "iris": False}
    for bad in ({"four_eyes": "yes"}, {"four_eyes": True, "model": "../x"}):
        _, error = call(tmp_path, "policy_set", **bad)
        assert error["code"] == "usage", (bad, error)
    (tmp_path / "policy.json").write_text(json.dumps({"four_eyes": {"*": "yes"}}))
    _, error = call(tmp_path, "status")
    assert error["code"] == "policy_invalid" and "four_eyes" in error["message"]


def test_the_desktop_asks_for_four_eyes_on_its_production_servers_only(tmp_path):
    from app.store.servers import ServerConfig
    from app.workspace import Workspace

    class Unreachable:
        ssh_user = "u"

        def __init__(self, name):
            self.name = name

    ws = Workspace()
    for name, env in (("prod1", "production"), ("stage1", "staging")):
        ws.servers.save(ServerConfig(name=name, kind="ssh", host="127.0.0.1", port=9, user="u", root="/srv",
                                     environment=env))
    assert ws.deploy(Unreachable("prod1"), tmp_path).trail.asks() == {"expires_s": 86400.0}
    ws.set_setting("four_eyes_production", "true")
    ws.set_setting("approval_expiry_hours", "2")
    job = ws.deploy(Unreachable("prod1"), tmp_path)
    job.trail.begin()
    assert job.trail.request("u")["four_eyes"] is True and job.trail.request("u")["expires_s"] == 7200.0
    assert "four_eyes" not in ws.deploy(Unreachable("stage1"), tmp_path).trail.asks()
    for bad in ("0", "169", "soon"):
        with pytest.raises(ValueError, match="a number from 0.01 to 168"):
            ws.set_setting("approval_expiry_hours", bad)


def rewrite(root, rid, **changes):
    """What a member of a shared root (or the requester) can do between `approvals` and `approve`:
    rewrite the pending request and the digest the journal holds for it. Returns the new digest."""
    import hashlib

    path = root / ".berth" / "approvals" / f"{rid}.json"
    old = hashlib.sha256(path.read_bytes()).hexdigest()
    record = json.loads(path.read_text())
    record["request"].update(changes.pop("request", {}))
    record.update(changes)
    raw = (json.dumps(record, sort_keys=True, indent=1) + "\n").encode()
    path.write_bytes(raw)
    new = hashlib.sha256(raw).hexdigest()
    journal = root / "journal.jsonl"
    journal.write_text(journal.read_text().replace(old, new))
    return new


def test_an_approval_is_bound_to_the_request_the_approver_was_shown(tmp_path):
    policy(tmp_path, production=True, four_eyes={"*": True})
    _, error = call(tmp_path, "rollback", model="fraud", to="1.0.0", reason="bad night")
    rid = error["request"]
    shown, _ = call(tmp_path, "approvals")
    seen = shown["requests"][0]["digest"]
    assert len(seen) == 64 and seen != shown["requests"][0]["sha256"]
    # another user's request (so this approver may approve it), now rolling back to a version nobody looked at
    now = rewrite(tmp_path, rid, requested_uid=4242, requested_by="mallory", request={"to": "0.0.1"})
    _, error = call(tmp_path, "approve", id=rid, expect_sha256=seen)
    assert error["code"] == "approval_changed", error
    assert "changed since you looked at it" in error["message"] and "berth approvals" in error["message"]
    assert "\n" not in error["message"]
    assert not (tmp_path / ".berth" / "approvals" / f"{rid}.decision.json").exists()  # nothing decided
    listed, _ = call(tmp_path, "approvals")
    assert [(r["id"], r["state"], r["digest"]) for r in listed["requests"]] == [(rid, "pending", now)]
    events = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    changed = [e for e in events if e["action"] == "approval.changed"]
    assert [(e["outcome"], e["request"], e["expected"], e["digest"]) for e in changed] == \
        [("refused", rid, seen, now)], changed
    _, error = call(tmp_path, "approve", id=rid, expect_sha256=now[:16])  # looked again: this one is approved
    assert error["code"] != "approval_changed" and "0.0.1" in error["message"], error  # performed: no such release
    listed, _ = call(tmp_path, "approvals")
    assert listed["requests"][0]["state"] == "approved"


def test_a_bad_request_digest_is_refused_as_usage(tmp_path):
    policy(tmp_path, production=True, four_eyes={"*": True})
    _, error = call(tmp_path, "rollback", model="fraud", to="1.0.0")
    rid = error["request"]
    digest = call(tmp_path, "approvals")[0]["requests"][0]["digest"]
    for bad in ("", digest[:15], digest + "0", "g" * 16, 12345, ["x"]):
        _, error = call(tmp_path, "approve", id=rid, expect_sha256=bad)
        assert error["code"] == "usage" and "digest" in error["message"], (bad, error)
    assert call(tmp_path, "approvals")[0]["requests"][0]["state"] == "pending"


def test_the_command_line_shows_the_digest_and_binds_the_approval_to_it(capsys, berth_home):
    from cli_kit import berth

    root = berth_home / "local"
    policy(root, production=True, four_eyes={"*": True})
    rid = call(root, "rollback", model="fraud", to="1.0.0")[1]["request"]
    listed = berth(capsys, "approvals", "--server", "local", "--json").json()
    seen = listed["requests"][0]["digest"]
    assert len(seen) == 64
    text = berth(capsys, "approvals", "--server", "local")
    assert seen[:16] in text.out and seen not in text.out, text
    now = rewrite(root, rid, requested_uid=4242, requested_by="mallory", request={"to": "0.0.1"})
    r = berth(capsys, "approve", rid, "--server", "local", "--sha256", seen[:16])
    assert r.code == 1 and "changed since you looked at it" in r.err, r
    assert [e["outcome"] for e in _desktop_audit("approval.changed")] == ["refused"]
    for bad in ("abc", "z" * 16, seen[:15]):
        r = berth(capsys, "approve", rid, "--server", "local", "--sha256", bad)
        assert r.code == 1 and "invalid request digest" in r.err, (bad, r)
    r = berth(capsys, "approve", rid, "--server", "local", "--sha256", seen[:16], "--reject")
    assert r.code == 1 and "a rejection needs none" in r.err, r
    r = berth(capsys, "approve", rid, "--server", "local")  # reads it first, says what, binds to that
    assert f"approving {rid}: rollback fraud 0.0.1 asked by mallory" in r.out and now in r.out, r
    assert "0.0.1" in r.err and "changed since" not in r.err, r


def _desktop_audit(action):
    from app.workspace import Workspace

    return [e for e in Workspace().audit.list(limit=50) if e["action"] == action]


def test_a_shared_roots_approvals_folder_is_sticky_and_its_requests_not_group_writable(tmp_path):
    """An existing shared root gets it on a second `init-shared-root`, which says what it changed; a
    folder the agent makes on a shared `.berth` is sticky from the start."""
    import grp
    import stat

    group = next(g for g in ("users", "daemon", "nogroup", "root") if _group_exists(grp, g))
    policy(tmp_path, production=True, four_eyes={"*": True})
    folder = tmp_path / ".berth" / "approvals"
    folder.mkdir(parents=True)
    os.chmod(folder, 0o2770)  # as init-shared-root left it before
    old = folder / "0123456789ab.json"
    old.write_text("{}")
    os.chmod(old, 0o660)
    result, error = call(tmp_path, "init_shared_root", group=group)
    assert error is None, error
    assert f"mode of {folder}: 2770 -> 3770" in result["changes"] and f"mode of {old}: 0660 -> 0640" in \
        result["changes"], result["changes"]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o3770 and stat.S_IMODE(old.stat().st_mode) == 0o640
    assert call(tmp_path, "init_shared_root", group=group)[0]["changes"] == []
    old.unlink()
    folder.rmdir()  # made again by the next request, as sticky as the layout wants it
    rid = call(tmp_path, "rollback", model="fraud", to="1.0.0")[1]["request"]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o3770
    assert stat.S_IMODE((folder / f"{rid}.json").stat().st_mode) == 0o640


def _group_exists(grp, name):
    try:
        return grp.getgrnam(name) is not None
    except KeyError:
        return False
