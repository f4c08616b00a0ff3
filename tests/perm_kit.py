"""Real Unix users and a shared Berth root for the permission tests (they run as root, here and in CI).

    U = RunNames("bpadmin", "bpviewer", "bpteam")      # at import: U.bpadmin == "bpadmin-k3x9", this run's
    with unix_users({U.bpteam: [U.bpadmin, U.bpviewer]}, home_base) as users:
        users.call(sshd, U.bpviewer, "status", {"root": ...})   # the agent over SSH, as that user

Names are unique per run (a random suffix), so two runs on one machine never share or remove each
other's users; whatever was made is removed at the end, however the tests end. Each user gets a home
under `home_base` with its own copy of the agent, installed as Berth installs it (0700/0600, owned by
the user), and is run through the very bootstrap Berth sends: the request is hand-written JSON on
stdin, so nothing of the desktop's code decides anything."""
from __future__ import annotations

import contextlib
import grp
import hashlib
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import string
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from app.remote.agent_install import AGENT_SOURCE, LAUNCHER, agent_argv
from sshd import SshServer, require_sshd

def _run_suffix() -> str:
    """Four characters unique to this pytest run; the same in every pytest-xdist worker of it (the
    names appear in parametrised test ids, which the workers must collect alike)."""
    uid = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if uid:
        digest = hashlib.sha256(uid.encode()).digest()
        return "-" + "".join((string.ascii_lowercase + string.digits)[b % 36] for b in digest[:4])
    return "-" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(4))


RUN = _run_suffix()


class RunNames:
    """`U.bpadmin` -> this run's login "bpadmin-k3x9" (Linux allows 32 characters: asserted)."""

    def __init__(self, *names):
        for name in names:
            assert len(name + RUN) <= 32, name
            setattr(self, name, name + RUN)


def _run(*argv):
    subprocess.run(argv, check=True, capture_output=True, text=True)


@contextlib.contextmanager
def unix_users(groups: dict[str, list[str]], home_base: Path):
    """{group: [user, ...]}: the groups and users (a user's first group is its primary one, the others
    supplementary), each with its agent; all removed on the way out, also when making them failed."""
    users = UnixUsers(groups, home_base)
    try:
        users.make()
        yield users
    finally:
        users.remove()


@contextlib.contextmanager
def team(prefix: str, groups: dict[str, list[str]]):
    """(users, sshd, base folder) for a module's real-user tests: the users of `groups`, the loopback
    sshd they log in to, a folder under /tmp for their roots; all gone on the way out."""
    require_sshd()
    if os.getuid() != 0:
        pytest.fail("these tests create Unix users: run them as root (CI does)", pytrace=False)
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        (base / "homes").mkdir()
        (base / "sshd").mkdir(mode=0o755)
        srv = SshServer(folder=base / "sshd")
        os.chmod(srv.authorized_keys_path, 0o644)  # sshd reads it as the user logging in
        with unix_users(groups, base / "homes") as users:
            srv.start()
            try:
                yield users, srv, base
            finally:
                srv.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _ssh(sshd, user, remote, **run):
    known = Path(sshd.folder) / "known_hosts"
    known.write_text(sshd.known_hosts_line() + "\n")
    return subprocess.run(
        ["ssh", "-F", "none", "-i", str(sshd.key_path), "-p", str(sshd.port), "-o", "BatchMode=yes",
         "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
         f"{user}@{sshd.host}", remote], capture_output=True, text=True, **run)


def shell(sshd, user, command):
    """`command` run by `user` over SSH, by hand (no Berth code): (exit code, stderr)."""
    out = _ssh(sshd, user, command, timeout=60)
    return out.returncode, out.stderr


def _end_processes_of(uid: int):
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _owner(p) == uid]
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(_owner(Path(f"/proc/{pid}")) == uid for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def _owner(proc: Path):
    """The uid of a live process (a zombie, which nothing here reaps, counts as ended)."""
    try:
        if (proc / "stat").read_bytes().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
            return None
        return proc.stat().st_uid
    except (OSError, IndexError):
        return None


class UnixUsers:
    def __init__(self, groups: dict[str, list[str]], home_base: Path):
        self.groups, self.home_base = groups, Path(home_base)
        self.names = list(dict.fromkeys(n for members in groups.values() for n in members))
        self.made: list[tuple[str, str]] = []

    def make(self):
        os.chmod(self.home_base, 0o755)
        for group in self.groups:
            _run("groupadd", group)
            self.made.append(("group", group))
        for name in self.names:
            mine = [g for g, members in self.groups.items() if name in members]
            home = self.home_base / name
            extra = ["-G", ",".join(mine[1:])] if mine[1:] else []
            _run("useradd", "-M", "-d", str(home), "-s", "/bin/sh", "-g", mine[0], *extra, "-N", name)
            self.made.append(("user", name))
            _run("usermod", "-p", "*", name)  # not locked ("!"): sshd without PAM refuses locked accounts
            self._install_agent(name, home, mine[0])

    def remove(self):
        """Users first (a group that is someone's primary one cannot go), then the groups. A process
        one of this run's users still runs (a runner a failed test left) is ended first, by its pid:
        `userdel` refuses a user with processes."""
        for kind, name in sorted(self.made, key=lambda m: m[0] != "user"):
            if kind == "user":
                _end_processes_of(pwd.getpwnam(name).pw_uid)
            subprocess.run(["userdel" if kind == "user" else "groupdel", name], capture_output=True)
        self.made.clear()

    def uid(self, name):
        return pwd.getpwnam(name).pw_uid

    def gid(self, group=None):
        """The group's id (by default the first group's)."""
        return grp.getgrnam(group or next(iter(self.groups))).gr_gid

    def _install_agent(self, name, home, group):
        agent = home / "agent"
        (agent / "berth_agent").mkdir(parents=True)
        for src in sorted(AGENT_SOURCE.glob("*.py")):
            shutil.copyfile(src, agent / "berth_agent" / src.name)
        (agent / "agent.py").write_bytes(LAUNCHER)
        uid = self.uid(name)
        for path in (home, agent, agent / "berth_agent", *agent.rglob("*")):
            os.chown(path, uid, self.gid(group))
            os.chmod(path, 0o700 if path.is_dir() else 0o600)

    def call(self, sshd, user, command, request, env=None):
        """(result, error) of one agent command run by `user` over SSH (`env`: variables set for it,
        e.g. the jobs' injected clock, which the agent passes on to the scheduler it starts)."""
        remote = shlex.join(agent_argv(str(self.home_base / user / "agent" / "agent.py"), command))
        if env:
            remote = "env " + shlex.join(f"{k}={v}" for k, v in env.items()) + " " + remote
        out = _ssh(sshd, user, remote, input=json.dumps(request), timeout=120)
        lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        assert lines, f"no answer from the agent as {user}: {out.stderr[-2000:]}"
        last = lines[-1]
        return (last["result"], None) if last["event"] == "result" else (None, last)


def shared_root(path: Path, owner_uid: int, gid: int, policy: dict | None) -> Path:
    """A root as an admin sets it up for a team: the folder owned by its admin and not writable by
    others (so the policy in it counts); what every member writes (models, blobs, envs, the lock, the
    journal) group-owned by the team, setgid; `policy.json` owned by the admin, 0644."""
    path.mkdir(parents=True)
    os.chown(path, owner_uid, gid)
    os.chmod(path, 0o755)
    for sub in (".berth", ".berth/blobs", ".berth/envs", "models"):
        (path / sub).mkdir(parents=True, exist_ok=True)
        os.chown(path / sub, 0, gid)
        os.chmod(path / sub, 0o2770)
    for name in (".berth/lock", "journal.jsonl"):
        (path / name).touch()
        os.chown(path / name, 0, gid)
        os.chmod(path / name, 0o660)
    if policy is not None:
        (path / "policy.json").write_text(json.dumps(policy))
        os.chown(path / "policy.json", owner_uid, gid)
        os.chmod(path / "policy.json", 0o644)
    return path


def own_blobs(root: Path, request: dict, uid: int, mode: int = 0o400) -> dict:
    """The deploy request's blobs, as that user's upload leaves them (its own, 0400; 0440 where the
    upload is committed in a shared root, app/agent/blobs.py)."""
    for f in request["files"]:
        blob = root / ".berth" / "blobs" / f["sha256"]
        os.chown(blob, uid, -1)
        os.chmod(blob, mode)
    return request


def journal_events(root: Path, action: str) -> list[dict]:
    lines = (root / "journal.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, filter(None, lines)) if e["action"] == action]
