"""The role table and the policy file's rules, in-process (the tests run as root; with a policy, root
is a user like any other). The real-user, over-SSH cases are in test_permissions_users.py."""
import json
import os
import pwd

import pytest

from agent_kit import call as agent_call
from app.agent import roles
from app.agent.main import COMMANDS

ME = pwd.getpwuid(os.getuid()).pw_name


def call(root, command, **payload):
    result, error, _ = agent_call(root, command, **payload)
    return result, error


def test_every_agent_command_declares_the_role_it_needs():
    missing = sorted(set(COMMANDS) - set(roles.NEEDS))
    assert not missing, f"add these commands to app/agent/roles.py NEEDS: {missing}"
    assert all(r in roles.ROLES or r == roles.CHANGE for r in roles.NEEDS.values())
    assert roles.needed("deploy", production=False) == "deployer"
    assert roles.needed("rollback", production=True) == "releaser"


def test_without_a_policy_the_roots_owner_is_admin(tmp_path):
    me, error = call(tmp_path, "whoami")
    assert error is None and me["user"] == ME and me["roles"] == {"*": "admin"} and me["policy"] == "none"
    me, error = call(tmp_path / "not yet made", "whoami")  # whoever creates the root will own it
    assert me["roles"] == {"*": "admin"}


def write_policy(root, data, mode=0o644):
    root.mkdir(exist_ok=True)
    (root / "policy.json").write_text(data if isinstance(data, str) else json.dumps(data))
    os.chmod(root / "policy.json", mode)


def test_with_a_policy_only_its_grants_count(tmp_path):
    write_policy(tmp_path, {"roles": {ME: {"*": "viewer", "fraud": "operator"}, "someone": {"*": "admin"}}})
    me, _ = call(tmp_path, "whoami")
    assert me["roles"] == {"*": "viewer", "fraud": "operator"} and me["policy"] == "trusted"
    _, error = call(tmp_path, "start", model="iris")
    assert error["code"] == "permission_denied" and "needs the operator role; you (%s) have viewer" % ME \
        in error["message"] and "someone" in error["message"]
    _, error = call(tmp_path, "start", model="fraud")
    assert error["code"] != "permission_denied"  # allowed: it fails later, for want of a release


@pytest.mark.parametrize("text, problem", [
    ("{not json", "not valid"), ('["a"]', "JSON object"), ('{"roles": {"a b": {"*": "viewer"}}}', "invalid user"),
    ('{"roles": {"ann": {"*": "god"}}}', "invalid role"), ('{"roles": {"ann": {"../x": "viewer"}}}', "invalid model"),
    ('{"production": "yes"}', "true or false"), ('{"prod": true}', "unknown keys"),
])
def test_a_malformed_policy_is_named_and_refuses_everything(tmp_path, text, problem):
    write_policy(tmp_path, text)
    _, error = call(tmp_path, "status")
    assert error["code"] == "policy_invalid" and problem in error["message"] and "policy.json" in error["message"]


def test_a_policy_in_a_folder_others_can_write_is_not_trusted(tmp_path):
    write_policy(tmp_path, {"roles": {ME: {"*": "admin"}}})
    os.chmod(tmp_path, 0o777)
    shown, _ = call(tmp_path, "policy_show")
    assert shown["state"] == "untrusted" and "its folder" in shown["untrusted"]
    _, error = call(tmp_path, "policy_grant", principal="ann", role="viewer")
    assert error["code"] == "permission_denied" and "not trusted" in error["message"]
    os.chmod(tmp_path, 0o1777)  # sticky: nobody can replace a file they do not own
    shown, _ = call(tmp_path, "policy_show")
    assert shown["state"] == "trusted"


def test_a_policy_link_is_not_trusted(tmp_path):
    write_policy(tmp_path / "elsewhere", {"roles": {ME: {"*": "admin"}}})
    os.symlink(tmp_path / "elsewhere" / "policy.json", tmp_path / "policy.json")
    shown, _ = call(tmp_path, "policy_show")
    assert shown["state"] == "untrusted" and "symbolic link" in shown["untrusted"]


def test_the_first_grant_keeps_its_writer_admin_and_the_last_admin_stays(tmp_path):
    result, error = call(tmp_path, "policy_grant", principal="@ops", role="operator", model="fraud")
    assert error is None and result["after"] == {ME: {"*": "admin"}, "@ops": {"fraud": "operator"}}
    _, error = call(tmp_path, "policy_revoke", principal=ME, role="admin")
    assert error["code"] == "usage" and "last admin" in error["message"]
    _, error = call(tmp_path, "policy_revoke", principal="@ops", role="admin", model="fraud")
    assert error["code"] == "usage" and "has operator" in error["message"]
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_an_admin_marks_the_server_production_and_then_a_deployer_may_not_deploy(tmp_path):
    _, error = call(tmp_path, "policy_set", production="yes")
    assert error["code"] == "usage" and "true or false" in error["message"]
    result, error = call(tmp_path, "policy_set", production=True)
    assert error is None and result["before"] is False and result["after"] is True
    shown, _ = call(tmp_path, "policy_show")
    assert shown["production"] is True and shown["roles"] == {ME: {"*": "admin"}}
    write_policy(tmp_path, {"production": True, "roles": {ME: {"*": "deployer"}, "boss": {"*": "admin"}}})
    _, error = call(tmp_path, "rollback", model="iris")
    assert error["code"] == "permission_denied" and "production server (model iris) needs the releaser role" \
        in error["message"]
    _, error = call(tmp_path, "policy_set", production=False)
    assert error["code"] == "permission_denied" and "needs the admin role" in error["message"]
    assert json.loads((tmp_path / "policy.json").read_text())["production"] is True


def test_a_huge_policy_is_refused_unread(tmp_path):
    write_policy(tmp_path, '{"roles": {}, "x": "' + "a" * 300_000 + '"}')
    _, error = call(tmp_path, "hello")
    assert error["code"] == "policy_invalid" and "over 256 KB" in error["message"]


def test_a_command_nobody_gave_a_role_is_for_admins_only(tmp_path):
    from app.agent.layout import AgentError, Root
    from app.agent.operations import Context
    from app.agent.permissions import enforce

    write_policy(tmp_path, {"roles": {ME: {"*": "releaser"}}})
    with pytest.raises(AgentError) as refused:
        enforce(Context(Root(str(tmp_path)), {}, lambda *a, **k: None), "experiment_brand_new", {})
    assert refused.value.code == "permission_denied" and "needs the admin role" in str(refused.value)
