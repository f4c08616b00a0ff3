"""A shared root with a writers group (`init-shared-root --group G --writers W`, docs/permissions.md):
real Unix users over the loopback sshd. Any writer changes any model (A deploys, B deploys v2 over
A's running runner, which B's agent asks to stop, and rolls back; A stops B's runner); the viewer
still cannot write a release; an approver performs A's held production deploy on A's model; each
member's jobs run as that member, by that member's own scheduler."""
import json
import os
import shlex
import time
from pathlib import Path

import pytest

from agent_kit import deploy_request, http_json, make_bundle, stop_all
from jobs_kit import BATCH_MODEL, write_csv
from perm_kit import RunNames, own_blobs, shell, team

pytestmark = pytest.mark.slow  # real-user deploys: about 20 s for the module

U = RunNames("bwowner", "bwa", "bwb", "bwviewer", "bwteam", "bwwrite")  # this run's logins
ROLES = {U.bwowner: {"*": "admin"}, U.bwa: {"*": "releaser"}, U.bwb: {"*": "releaser"},
         "@" + U.bwteam: {"*": "viewer"}}


@pytest.fixture(scope="module")
def world():
    """(users, sshd, root): a production root bwowner shared with the team, bwa and bwb its writers."""
    groups = {U.bwteam: [U.bwowner, U.bwa, U.bwb, U.bwviewer], U.bwwrite: [U.bwowner, U.bwa, U.bwb]}
    with team("berth-writers-", groups) as (users, srv, base):
        root = base / "srv-berth"
        root.mkdir(mode=0o755)
        os.chown(root, users.uid(U.bwowner), users.gid(U.bwteam))
        try:
            result, error = users.call(srv, U.bwowner, "init_shared_root",
                                       {"root": str(root), "group": U.bwteam, "writers": U.bwwrite})
            assert error is None and any("writable by " + U.bwwrite in c for c in result["changes"]), (result, error)
            for who, role in ROLES.items():
                _, error = users.call(srv, U.bwowner, "policy_grant", {"root": str(root), "principal": who,
                                                                       "role": next(iter(role.values()))})
                assert error is None, error
            _, error = users.call(srv, U.bwowner, "policy_set", {"root": str(root), "production": True})
            assert error is None, error
            yield users, srv, root
        finally:
            stop_all(root)


def deploy_as(users, srv, user, root, name, version, folder, **extra):
    bundle = make_bundle(folder, name=name, version=version, example=json.dumps({"x": 1}))
    req = own_blobs(root, deploy_request(root, bundle), users.uid(user), 0o440)  # as a shared root's upload
    return users.call(srv, user, "deploy", dict(req, root=str(root), actor={"user": user, "host": "desk"}, **extra))


def runner(root, model, version):
    """(pid, its owner's uid) of the model's runner of that version, or None when none runs."""
    path = root / "models" / model / "run" / f"{version}.runner.json"
    if not path.exists():
        return None
    pid = json.loads(path.read_text())["pid"]
    try:
        return pid, os.stat(f"/proc/{pid}").st_uid
    except FileNotFoundError:
        return None


def gone(pid):
    """The process ended (a zombie no parent of ours reaps counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except FileNotFoundError:
        return True


def serving(root, model):
    port = json.loads((root / "models" / model / "endpoint.json").read_text())["port"]
    return http_json(port, "POST", "/predict", 1)[1]["version"]


def test_init_with_writers_makes_the_models_writable_by_the_writers_only(world):
    users, srv, root = world
    for rel, group, want in (("", U.bwteam, 0o2750), (".berth", U.bwwrite, 0o2775), ("models", U.bwwrite, 0o3775),
                             (".berth/agent", U.bwteam, 0o3770), ("journal.jsonl", U.bwteam, 0o660)):
        st = os.lstat(root / rel)
        assert (st.st_mode & 0o7777, st.st_gid) == (want, users.gid(group)), (rel, oct(st.st_mode))
    again, error = users.call(srv, U.bwowner, "init_shared_root",
                              {"root": str(root), "group": U.bwteam, "writers": U.bwwrite})
    assert error is None and again["changes"] == [], again
    _, error = users.call(srv, U.bwowner, "init_shared_root", {"root": str(root), "group": U.bwteam,
                                                               "writers": U.bwteam})
    assert error["code"] == "usage" and "must not be the group" in error["message"], error
    _, error = users.call(srv, U.bwowner, "init_shared_root", {"root": str(root), "group": U.bwteam,
                                                               "writers": "no-such-writers"})
    assert error["code"] == "usage" and "there is no group no-such-writers" in error["message"], error


def test_any_writer_changes_any_model_and_a_viewer_still_cannot_write_a_release(world, tmp_path):
    users, srv, root = world
    _, error = deploy_as(users, srv, U.bwa, root, "echo", "1.0.0", tmp_path / "a1")
    assert error is None, error
    a_runner = runner(root, "echo", "1.0.0")
    assert a_runner[1] == users.uid(U.bwa) and serving(root, "echo") == "1.0.0"
    result, error = deploy_as(users, srv, U.bwb, root, "echo", "2.0.0", tmp_path / "b2")
    assert error is None and result["previous"] == "1.0.0", error  # B replaced A's running runner
    assert runner(root, "echo", "1.0.0") is None and gone(a_runner[0])
    assert runner(root, "echo", "2.0.0")[1] == users.uid(U.bwb) and serving(root, "echo") == "2.0.0"
    result, error = users.call(srv, U.bwb, "rollback", {"root": str(root), "model": "echo"})
    assert error is None and result["version"] == "1.0.0", error  # A's release, run by B now
    assert runner(root, "echo", "1.0.0")[1] == users.uid(U.bwb) and serving(root, "echo") == "1.0.0"
    releases = root / "models" / "echo" / "releases"
    for where in (releases, releases / "1.0.0", releases / "2.0.0"):
        code, err = shell(srv, U.bwviewer, "touch " + shlex.quote(str(where / "by-hand")))
        assert code != 0 and "Permission denied" in err, (where, err)
    _, error = users.call(srv, U.bwviewer, "stop", {"root": str(root), "model": "echo"})
    assert error["code"] == "permission_denied", error
    b_runner = runner(root, "echo", "1.0.0")
    result, error = users.call(srv, U.bwa, "stop", {"root": str(root), "model": "echo"})
    assert error is None and result["detail"] == "stopped", error  # A stops B's runner: asked, not signalled
    assert runner(root, "echo", "1.0.0") is None and gone(b_runner[0])


def test_an_approver_performs_a_held_deploy_on_a_model_of_another_user(world, tmp_path):
    users, srv, root = world
    _, error = deploy_as(users, srv, U.bwa, root, "fraud", "1.0.0", tmp_path / "f1")
    assert error is None, error
    _, error = users.call(srv, U.bwowner, "policy_set", {"root": str(root), "four_eyes": True, "model": "fraud"})
    assert error is None, error
    _, error = deploy_as(users, srv, U.bwa, root, "fraud", "2.0.0", tmp_path / "f2")
    assert error["code"] == "approval_pending", error
    result, error = users.call(srv, U.bwb, "approve", {"root": str(root), "id": error["request"], "model": "fraud"})
    assert error is None, error
    assert serving(root, "fraud") == "2.0.0" and runner(root, "fraud", "2.0.0")[1] == users.uid(U.bwb)
    assert runner(root, "fraud", "1.0.0") is None


def test_each_members_jobs_run_as_that_member_by_a_scheduler_of_their_own(world, tmp_path):
    users, srv, root = world
    clock = root.parent / "now.txt"
    clock.write_text("2026-03-02T00:30:00+00:00")
    os.chmod(clock, 0o644)
    env = {"BERTH_FAKE_NOW_FILE": str(clock)}
    bundle = make_bundle(tmp_path / "scorer", name="scorer", model_src=BATCH_MODEL.format(version="1.0.0"))
    req = own_blobs(root, deploy_request(root, bundle), users.uid(U.bwa), 0o440)
    _, error = users.call(srv, U.bwa, "deploy", dict(req, root=str(root)))
    assert error is None, error
    outputs = {}
    for user in (U.bwa, U.bwb):
        mine = root.parent / f"work-{user}"
        (mine / "inbox").mkdir(parents=True)
        write_csv(mine / "inbox" / "a.csv", [{"x": 1}, {"x": 2}])
        for path in (mine, mine / "inbox", mine / "inbox" / "a.csv"):
            os.chown(path, users.uid(user), -1)
        outputs[user] = mine / "out.db"
        job = {"root": str(root), "name": f"job-{user[:3]}", "model": "scorer", "schedule": {"every": "1h"},
               "tz": "UTC", "input": {"kind": "dir", "path": str(mine / "inbox"), "pattern": "*.csv"},
               "output": {"url": f"sqlite:///{outputs[user]}", "table": "scores"}, "version": None}
        _, error = users.call(srv, user, "job_add", job, env=env)
        assert error is None, error
    clock.write_text("2026-03-02T01:00:01+00:00")  # both jobs are due
    for user in outputs:
        run = wait_run(root / "jobs" / f"job-{user[:3]}" / "runs")
        assert run[0]["state"] == "ok" and run[1] == users.uid(user), (user, run)  # the run was its owner's
        assert outputs[user].stat().st_uid == users.uid(user)
        pid = json.loads((root / ".berth" / f"scheduler-{user}.json").read_text())["pid"]
        assert os.stat(f"/proc/{pid}").st_uid == users.uid(user)


def wait_run(runs, timeout=60):
    """(the first ended run's record, the uid that wrote it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in runs.glob("*.json") if runs.is_dir() else ():
            run = json.loads(path.read_text() or "{}")
            if run.get("state") not in (None, "running"):
                return run, path.stat().st_uid
        time.sleep(0.2)
    raise AssertionError(f"no run ended in {runs} within {timeout} s")
