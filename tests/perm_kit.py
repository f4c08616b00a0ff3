"""Real Unix users and a shared Berth root for the permission tests (they run as root, here and in CI).

    with UnixUsers("bpteam", ["bpadmin", "bpviewer"], home_base) as users:
        users.call(sshd, "bpviewer", "status", {"root": ...})   # the agent over SSH, as that user

Each user gets a home under `home_base` with its own copy of the agent, installed as Berth installs
it (0700/0600, owned by the user), and is run through the very bootstrap Berth sends: the request is
hand-written JSON on stdin, so nothing of the desktop's code decides anything."""
from __future__ import annotations

import grp
import json
import os
import pwd
import shlex
import shutil
import subprocess
from pathlib import Path

from app.remote.agent_install import AGENT_SOURCE, LAUNCHER, agent_argv


def _run(*argv):
    subprocess.run(argv, check=True, capture_output=True, text=True)


class UnixUsers:
    def __init__(self, group: str, names: list[str], home_base: Path):
        self.group, self.names, self.home_base = group, names, Path(home_base)

    def __enter__(self):
        self._remove()
        os.chmod(self.home_base, 0o755)
        _run("groupadd", self.group)
        for name in self.names:
            home = self.home_base / name
            _run("useradd", "-M", "-d", str(home), "-s", "/bin/sh", "-g", self.group, "-N", name)
            _run("usermod", "-p", "*", name)  # not locked ("!"): sshd without PAM refuses locked accounts
            self._install_agent(name, home)
        return self

    def __exit__(self, *exc):
        self._remove()

    def _remove(self):
        for name in self.names:
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            subprocess.run(["userdel", name], capture_output=True)
        try:
            grp.getgrnam(self.group)
            subprocess.run(["groupdel", self.group], capture_output=True)
        except KeyError:
            pass

    def uid(self, name):
        return pwd.getpwnam(name).pw_uid

    def gid(self):
        return grp.getgrnam(self.group).gr_gid

    def _install_agent(self, name, home):
        agent = home / "agent"
        (agent / "berth_agent").mkdir(parents=True)
        for src in sorted(AGENT_SOURCE.glob("*.py")):
            shutil.copyfile(src, agent / "berth_agent" / src.name)
        (agent / "agent.py").write_bytes(LAUNCHER)
        uid = self.uid(name)
        for path in (home, agent, agent / "berth_agent", *agent.rglob("*")):
            os.chown(path, uid, self.gid())
            os.chmod(path, 0o700 if path.is_dir() else 0o600)

    def call(self, sshd, user, command, request):
        """(result, error) of one agent command run by `user` over SSH."""
        known = Path(sshd.folder) / "known_hosts"
        known.write_text(sshd.known_hosts_line() + "\n")
        remote = shlex.join(agent_argv(str(self.home_base / user / "agent" / "agent.py"), command))
        out = subprocess.run(
            ["ssh", "-F", "none", "-i", str(sshd.key_path), "-p", str(sshd.port), "-o", "BatchMode=yes",
             "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
             f"{user}@{sshd.host}", remote],
            input=json.dumps(request), capture_output=True, text=True, timeout=120)
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


def own_blobs(root: Path, request: dict, uid: int) -> dict:
    """The deploy request's blobs, as that user's upload leaves them (its own, 0400)."""
    for f in request["files"]:
        blob = root / ".berth" / "blobs" / f["sha256"]
        os.chown(blob, uid, -1)
        os.chmod(blob, 0o400)
    return request


def journal_events(root: Path, action: str) -> list[dict]:
    lines = (root / "journal.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, filter(None, lines)) if e["action"] == action]
