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
