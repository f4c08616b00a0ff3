"""An adversary's pass over roles, the policy and four eyes (issue 18), in-process: the tests run as
one Unix user, and with a policy that user is like any other. Each attack that found a fault failed
here before its fix; the ones that held stay as tests so they keep holding."""
import json
import os
import pwd

import pytest

from agent_kit import call as agent_call
from app.agent import alertstore, main as agent_main, roles
from app.agent.alertrules import validated
from app.agent.jobstore import JobDir, jobs_dir
from app.agent.layout import Root

ME = pwd.getpwuid(os.getuid()).pw_name


def call(root, command, **payload):
    result, error, _ = agent_call(root, command, **payload)
    return result, error


def write_raw(root, text, mode=0o644):
    root.mkdir(exist_ok=True)
    (root / "policy.json").write_text(text)
    os.chmod(root / "policy.json", mode)


def policy(root, roles_, **data):
    write_raw(root, json.dumps(dict(data, roles=roles_)))


def a_job_of(root, name, model):
    """A job of `model` as job_add writes it (the model need not be deployed for the role check)."""
    os.makedirs(os.path.join(jobs_dir(Root(str(root))), name), exist_ok=True)
    JobDir(Root(str(root)), name).write({"name": name, "model": model, "schedule": {"every": "1d"}, "tz": "UTC",
                                         "input": {"kind": "dir", "path": str(root), "pattern": "*.jsonl"},
                                         "output": {"url": "sqlite:////nonexistent.db", "table": "t"}})


@pytest.mark.parametrize("command, extra", [("job_pause", {}), ("job_resume", {}), ("job_run", {}),
                                            ("job_remove", {})])  # job_edit held: a job's model cannot change
def test_a_role_on_model_a_does_not_act_on_the_job_of_model_b_by_naming_a(tmp_path, command, extra):
    """Found: the agent checked the role for the model the request *names*, not the job's own."""
    policy(tmp_path, {ME: {"*": "viewer", "a": "admin"}})
    a_job_of(tmp_path, "nightly", "b")
    _, error = call(tmp_path, command, name="nightly", model="a", **extra)
    assert error["code"] == "permission_denied" and "(model b)" in error["message"], error
    assert "paused" not in JobDir(Root(str(tmp_path)), "nightly").read()


def test_a_role_on_model_a_does_not_silence_test_or_remove_the_alert_of_model_b(tmp_path):
    policy(tmp_path, {ME: {"*": "viewer", "a": "admin"}})
    rule = validated({"name": "slow", "when": "p95_ms>500", "model": "b", "notify": ["webhook:http://127.0.0.1:9/"]})
    alertstore.write_rule(Root(str(tmp_path)), dict(rule, server="s"))
    for command, extra in (("alert_silence", {"for": "1h", "reason": "quiet"}), ("alert_test", {}),
                           ("alert_remove", {})):
        _, error = call(tmp_path, command, name="slow", model="a", **extra)
        assert error["code"] == "permission_denied" and "(model b)" in error["message"], (command, error)
    assert alertstore.read_rule(Root(str(tmp_path)), "slow")["model"] == "b"


@pytest.mark.parametrize("text", [
    '{"roles": {"%s": {"*": "viewer"}, "%s": {"*": "admin"}}}' % (ME, ME),  # a reviewer reads the first
    '{"production": true, "roles": {}, "production": false}',  # a change on "production" without the releaser
    '{"roles": {"%s": {"*": "viewer", "*": "admin"}}}' % ME,
])
def test_a_policy_with_a_duplicate_key_is_invalid_not_read_by_its_last_value(tmp_path, text):
    """Found: json.loads keeps the last of two equal keys, which is not what a reader of the file sees."""
    write_raw(tmp_path, text)
    _, error = call(tmp_path, "whoami")
    assert error["code"] == "policy_invalid" and "twice" in error["message"], error


def test_a_deeply_nested_policy_is_invalid_not_an_agent_crash(tmp_path):
    """Found: 100 000 brackets (within the size limit) raised RecursionError: `internal`, a traceback."""
    write_raw(tmp_path, '{"roles": ' + "[" * 100000 + "]" * 100000 + "}")
    _, error = call(tmp_path, "whoami")
    assert error["code"] == "policy_invalid", error


@pytest.mark.parametrize("text", ["{not json", '{"roles": ' + "[" * 100000 + "]" * 100000 + "}",
                                  '{"roles": {"%s": {"*": "godmode"}}}' % ME])
def test_a_policy_others_can_write_leaves_viewer_actions_whatever_they_write_into_it(tmp_path, text):
    """Found: a world-writable policy was still parsed, so whoever can write it could turn "viewer
    actions only" into "nothing at all" by writing garbage (every command refused, policy_invalid)."""
    write_raw(tmp_path, text, mode=0o666)
    result, error = call(tmp_path, "whoami")
    assert error is None and result["roles"] == {"*": "viewer"} and result["policy"] == "untrusted", error
    _, error = call(tmp_path, "rollback", model="m", to="1.0.0")
    assert error["code"] == "permission_denied" and "writable by others" in error["message"], error


# -- attacks that held -------------------------------------------------------------------------
@pytest.mark.parametrize("rid", ["../../policy", "a/b", "..", "0123456789ab/../x", "0123456789AB", "", None, 5])
def test_an_approval_id_is_twelve_hex_digits_never_a_path(tmp_path, rid):
    policy(tmp_path, {ME: {"*": "admin"}}, production=True)
    _, error = call(tmp_path, "approve", id=rid)
    assert error["code"] == "usage" and "invalid approval id" in error["message"], error


def test_a_group_that_does_not_exist_and_a_numeric_name_give_nothing(tmp_path):
    policy(tmp_path, {"@no-such-group-here": {"*": "admin"}, ME: {"*": "viewer"}})
    result, _ = call(tmp_path, "whoami")
    assert result["roles"] == {"*": "viewer"}
    write_raw(tmp_path, json.dumps({"roles": {str(os.getuid()): {"*": "admin"}}}))  # an unknown uid's name
    _, error = call(tmp_path, "whoami")
    assert error["code"] == "policy_invalid", error


def test_a_hard_linked_policy_counts_only_as_its_file_is_owned_and_moded(tmp_path):
    """A hard link is the same inode: owner and mode are checked on it, not on a name."""
    policy(tmp_path / "other", {ME: {"*": "admin"}})
    (tmp_path / "root").mkdir()
    os.link(tmp_path / "other" / "policy.json", tmp_path / "root" / "policy.json")
    os.chmod(tmp_path / "root" / "policy.json", 0o666)
    result, _ = call(tmp_path / "root", "whoami")
    assert result["policy"] == "untrusted"


def test_every_agent_command_has_a_role_and_an_unknown_one_is_refused(tmp_path):
    every = set(agent_main.COMMANDS) | {c for names in agent_main.LAZY.values() for c in names}
    assert every - set(roles.NEEDS) == set()
    policy(tmp_path, {ME: {"*": "releaser"}})
    _, error = call(tmp_path, "no_such_command")
    assert error is not None and error["code"] in ("usage", "permission_denied", "unknown_command"), error


def test_a_policy_over_its_size_limit_is_invalid(tmp_path):
    write_raw(tmp_path, json.dumps({"roles": {"u%d" % i: {"*": "viewer"} for i in range(20000)}}))
    _, error = call(tmp_path, "whoami")
    assert error["code"] == "policy_invalid" and "over 256 KB" in error["message"], error


def test_rejecting_needs_the_role_of_the_change_like_approving(tmp_path):
    """`berth approve --reject` is a decision too: a viewer cannot throw away a releaser's request."""
    policy(tmp_path, {ME: {"*": "viewer"}}, production=True)
    _, error = call(tmp_path, "approve", id="0123456789ab", reject=True)
    assert error["code"] == "permission_denied" and "releaser" in error["message"], error


def test_a_per_model_releaser_decides_that_models_request_even_when_the_call_names_no_model(tmp_path):
    """A hand-made `approve` without "model" was checked against the "*" role only."""
    policy(tmp_path, {ME: {"*": "admin"}}, production=True, four_eyes={"*": True})
    _, error = call(tmp_path, "rollback", model="fraud", to="1.0.0")
    rid = error["request"]
    policy(tmp_path, {ME: {"*": "viewer", "fraud": "releaser"}}, production=True, four_eyes={"*": True})
    result, error = call(tmp_path, "approve", id=rid, reject=True)  # the requester withdraws it
    assert error is None and result["decision"] == "rejected", error
