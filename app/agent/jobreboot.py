"""Bringing the scheduler back after a server reboot, where the server allows it: a `systemd --user`
unit when the user's systemd answers, else a crontab `@reboot` line when `crontab` exists, else
nothing (and Berth says so). The line or unit runs the scheduler module exactly as the agent does."""
import contextlib
import fcntl
import hashlib
import os
import shlex
import shutil
import subprocess

from .fsutil import read_json, write_json_atomic

MARK = "# berth-scheduler "


def _record(root):
    return os.path.join(root.meta, "reboot.json")


def _tag(root):
    return hashlib.sha256(root.path.encode()).hexdigest()[:12]


def systemd_user_works():
    if not shutil.which("systemctl"):
        return False
    try:
        return subprocess.run(["systemctl", "--user", "show-environment"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def shell_line(command, env):
    assigns = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in sorted(env.items()))
    return "%s %s" % (assigns, " ".join(shlex.quote(a) for a in command))


def ensure(root, command, env):
    """Install the reboot hook once; returns {"method": "systemd"|"crontab"|"none", "detail"}."""
    known = read_json(_record(root)) or {}
    if known.get("method") in ("systemd", "crontab") and known.get("command") == command:
        return known
    if systemd_user_works():
        result = _systemd(root, command, env)
    elif shutil.which("crontab"):
        result = _crontab(root, command, env)
    else:
        result = {"method": "none", "detail": "neither systemd --user nor crontab exists on this server: after a "
                                              "reboot the scheduler starts again at Berth's next connection"}
    result["command"] = command
    write_json_atomic(_record(root), result)
    return result


def state(root):
    r = read_json(_record(root)) or {}
    return {"method": r.get("method") or "unknown", "detail": r.get("detail") or "no job has been added yet"}


def _systemd(root, command, env):
    unit = "berth-scheduler-%s.service" % _tag(root)
    folder = os.path.expanduser("~/.config/systemd/user")
    os.makedirs(folder, exist_ok=True)
    text = ("[Unit]\nDescription=Berth job scheduler for %s\n\n[Service]\nExecStart=%s\nRestart=on-failure\n%s\n"
            "[Install]\nWantedBy=default.target\n" % (root.path, " ".join(shlex.quote(a) for a in command),
                                                       "".join("Environment=%s=%s\n" % (k, v) for k, v in sorted(env.items()))))
    with open(os.path.join(folder, unit), "w") as f:
        f.write(text)
    subprocess.run(["systemctl", "--user", "enable", unit], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=30)
    return {"method": "systemd", "detail": "systemd --user unit %s" % unit}


@contextlib.contextmanager
def _crontab_lock(root):
    """One user's crontab is shared by all their roots: two agents that read it, add their line and
    write it back at the same moment would lose one line. Serialised by a lock in the user's home (in
    the root's folder when the home cannot hold it: then only this root's changes are serialised)."""
    fd = None
    for folder in (os.path.expanduser("~"), root.meta):
        try:
            fd = os.open(os.path.join(folder, ".berth-crontab.lock"),
                         os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            break
        except OSError:
            continue
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _crontab(root, command, env):
    with _crontab_lock(root):
        return _crontab_locked(root, command, env)


def _crontab_locked(root, command, env):
    tag = MARK + _tag(root)
    listed = subprocess.run(["crontab", "-l"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, timeout=30)
    lines = [l for l in (listed.stdout.decode("utf-8", "replace").splitlines() if listed.returncode == 0 else [])
             if not l.endswith(tag)]
    log = shlex.quote(os.path.join(root.meta, "scheduler.out"))
    lines.append("@reboot %s >>%s 2>&1 %s" % (shell_line(command, env), log, tag))
    done = subprocess.run(["crontab", "-"], input=("\n".join(lines) + "\n").encode(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=30)
    if done.returncode != 0:
        return {"method": "none", "detail": "crontab refused the @reboot line: %s"
                % done.stderr.decode("utf-8", "replace").strip()[:200]}
    return {"method": "crontab", "detail": "crontab @reboot line (%s)" % tag.strip()}


def remove(root):
    """The last job is gone: take the reboot hook away again (the root may be deleted next)."""
    known = read_json(_record(root)) or {}
    if known.get("method") == "crontab" and shutil.which("crontab"):
        with _crontab_lock(root):
            _remove_line(MARK + _tag(root))
    elif known.get("method") == "systemd":
        unit = "berth-scheduler-%s.service" % _tag(root)
        subprocess.run(["systemctl", "--user", "disable", unit], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
        try:
            os.unlink(os.path.join(os.path.expanduser("~/.config/systemd/user"), unit))
        except OSError:
            pass
    try:
        os.unlink(_record(root))
    except OSError:
        pass


def _remove_line(tag):
    listed = subprocess.run(["crontab", "-l"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, timeout=30)
    if listed.returncode == 0:
        lines = [l for l in listed.stdout.decode("utf-8", "replace").splitlines() if not l.endswith(tag)]
        subprocess.run(["crontab", "-"], input=("\n".join(lines) + "\n").encode() if lines else b"",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
