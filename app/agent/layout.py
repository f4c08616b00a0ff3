"""Where things live under a server's Berth root (docs/architecture.md, "On the server")."""
import json
import os
import re
import stat

# Written once for the agent and the desktop's bundle check (the agent is the leaf both import).
NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,62}")
# A letter or digit first: ".", ".." and ".x" would name no folder, the parent, or a hidden one
# that `releases` skips (like .incoming-*), so such a version deployed and then vanished.
VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
SHARED_FILE = "shared.json"  # in .berth: the root is shared by a group (sharedroot.py)
SHARED_UMASK, PRIVATE_UMASK = 0o027, 0o077
WRITERS_UMASK = 0o002  # a shared root with a writers group: its folders' group is the writers (sharedroot.py)


class AgentError(Exception):
    """A failure the operator must read: `message` says what happened and what to do."""

    def __init__(self, message, code="failed", **extra):
        super().__init__(message)
        self.code = code
        self.extra = extra


def check_name(name):
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise AgentError("invalid model name %r" % (name,), "usage")
    return name


def check_version(version):
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        raise AgentError("invalid version %r" % (version,), "usage")
    return version


class Root:
    def __init__(self, path):
        self.path = os.path.abspath(os.path.expanduser(path))
        self.meta = os.path.join(self.path, ".berth")
        self.blobs = os.path.join(self.meta, "blobs")
        self.lock = os.path.join(self.meta, "lock")
        self.journal = os.path.join(self.path, "journal.jsonl")
        self.models = os.path.join(self.path, "models")

    def ensure(self):
        for d in (self.meta, self.blobs, self.models):
            os.makedirs(d, exist_ok=True)
        _drop_write_for_others(self.path, 0o002)  # a shared root's group may write; nobody else
        if not self.shared():  # a shared root's .berth is its group's (sharedroot.py)
            _drop_write_for_others(self.meta, 0o077)  # the agent, blobs, envs and the lock: ours only
        return self

    def shared(self):
        """Whether `berth server init-shared-root` marked this root: a regular file owned by root or the
        root's owner (a member cannot make a private root shared)."""
        try:
            st = os.lstat(os.path.join(self.meta, SHARED_FILE))
            return stat.S_ISREG(st.st_mode) and st.st_uid in (0, os.stat(self.path).st_uid)
        except OSError:
            return False

    def writers(self):
        """A shared root's writers group id (`init-shared-root --writers`), else None."""
        if not self.shared():
            return None
        try:
            with open(os.path.join(self.meta, SHARED_FILE)) as f:
                gid = json.load(f).get("writers_gid")
        except (OSError, ValueError, AttributeError):
            return None
        return gid if isinstance(gid, int) and not isinstance(gid, bool) else None

    def umask(self):
        """What the agent and its runners create here: group-readable in a shared root (group-writable
        where the folders' group is its writers), else private."""
        if not self.shared():
            return PRIVATE_UMASK
        return WRITERS_UMASK if self.writers() is not None else SHARED_UMASK

    def model(self, name):
        return ModelDir(os.path.join(self.models, check_name(name)), name)

    def model_names(self):
        if not os.path.isdir(self.models):
            return []
        return sorted(n for n in os.listdir(self.models) if NAME_RE.fullmatch(n))


class ModelDir:
    def __init__(self, path, name):
        self.path = path
        self.name = name
        self.releases = os.path.join(path, "releases")
        self.current = os.path.join(path, "current")
        self.run = os.path.join(path, "run")
        self.logs = os.path.join(path, "logs")

    def ensure(self):
        for d in (self.releases, self.run, self.logs):
            os.makedirs(d, exist_ok=True)
        return self

    def release(self, version):
        return os.path.join(self.releases, check_version(version))

    def current_version(self):
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        return os.path.basename(target.rstrip("/"))

    def runner_file(self, version):
        return os.path.join(self.run, check_version(version) + ".runner.json")

    def port_file(self, version):
        return os.path.join(self.run, check_version(version) + ".port")

    def control_file(self, version):
        return os.path.join(self.run, check_version(version) + ".ctl")

    def runner_log(self, version):
        return os.path.join(self.logs, check_version(version) + ".log")

    def request_log(self):
        return os.path.join(self.logs, "requests.jsonl")


def _drop_write_for_others(path, bits):
    """Folders made before the agent ran (by the transport, under the login's umask) lose `bits`."""
    try:
        mode = os.stat(path).st_mode & 0o7777
        if mode & bits:
            os.chmod(path, mode & ~bits)
    except OSError:
        pass


def inside_bundle(base, rel):
    """base/rel for a path the manifest names (the input example), refused when it could leave base:
    absolute, `..`, or a link pointing out. `./` parts are allowed, as `berth bundle check` allows them."""
    parts = rel.split("/") if isinstance(rel, str) else []
    parts = [p for p in parts if p != "."]
    if not parts or rel.startswith("/") or "\\" in rel or "\0" in rel or any(p in ("", "..") for p in parts):
        raise AgentError("invalid input_example path %r in the manifest" % (rel,), "bad_example")
    path = os.path.join(base, *parts)
    real_base = os.path.realpath(base)
    if os.path.commonpath([real_base, os.path.realpath(path)]) != real_base:
        raise AgentError("invalid input_example path %r in the manifest" % (rel,), "bad_example")
    return path
