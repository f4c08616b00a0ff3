"""Who may do what on this server: `<root>/policy.json`, read by the agent before every command.

Identity is the Unix user of the agent's own process and its groups (os.getuid, os.getgroups): nothing
the desktop sends. The file maps users and "@group"s to a role per model or "*" for all models:
    {"production": true, "roles": {"alice": {"*": "viewer", "fraud": "deployer"}, "@ops": {"*": "operator"}}}
It counts only when owned by root or by the root folder's owner and writable by nobody else (nor its
folder); one others can write leaves every user viewer actions only, and each refusal says why. With
no file, the root's owner (and root) is admin and everyone else a viewer: today's one-operator roots
work as before."""
import grp
import json
import os
import pwd
import re
import stat

from .layout import NAME_RE, AgentError
from .roles import ROLES, rank

FILE = "policy.json"
PRINCIPAL_RE = re.compile(r"@?[a-z_][a-z0-9_.-]{0,31}")  # a Unix user or group name, as useradd allows
MAX_BYTES = 256 * 1024


class Identity:
    def __init__(self):
        self.uid = os.getuid()
        self.user = user_name(self.uid)
        gids = set(os.getgroups()) | {os.getgid()}
        self.groups = sorted(_group_name(g) for g in gids)

    def principals(self):
        return [self.user] + ["@" + g for g in self.groups]


_ME = []


def me():
    """This process's Identity, looked up once (a session serves hours of requests as one user)."""
    if not _ME:
        _ME.append(Identity())
    return _ME[0]


def user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


class Policy:
    """The policy as this process may trust it: `untrusted` says why not (then viewer only)."""

    def __init__(self, root_path, data, exists, owner_uid, untrusted=""):
        self.root_path = root_path
        self.data = data
        self.exists = exists
        self.owner_uid = owner_uid  # the root folder's owner; None while the root does not exist
        self.untrusted = untrusted

    @property
    def path(self):
        return os.path.join(self.root_path, FILE)

    @property
    def production(self):
        return self.data.get("production") is True

    def roles(self):
        return self.data.get("roles") or {}

    def four_eyes(self, model=None):
        """Whether a change of `model` here waits for a second releaser (approvals.py): only on a
        production server; a model's own entry wins over "*"."""
        if not self.production or self.untrusted:
            return False
        flags = self.data.get("four_eyes") or {}
        return (flags[model] if model in flags else flags.get("*")) is True

    def role_of(self, identity, model=None):
        """The highest role any of the identity's names has for `model` (or for all models)."""
        if self.untrusted:
            return "viewer"
        if not self.exists:
            owner = self.owner_uid is None or identity.uid in (0, self.owner_uid)
            return "admin" if owner else "viewer"
        best = None
        for name in identity.principals():
            grants = self.roles().get(name) or {}
            for key in ("*", model):
                if key is not None and rank(grants.get(key)) > rank(best):
                    best = grants.get(key)
        return best

    def roles_map(self, identity):
        """{"*": ROLE, MODEL: ROLE, ...} for whoami: the models the policy names, where they differ."""
        everywhere = self.role_of(identity)
        out = {"*": everywhere}
        models = {m for grants in self.roles().values() if isinstance(grants, dict) for m in grants if m != "*"}
        for m in sorted(models):
            role = self.role_of(identity, m)
            if rank(role) > rank(everywhere):
                out[m] = role
        return out

    def admins(self):
        """Who can grant a role: the admins the policy names, else the root's owner."""
        named = sorted(p for p, grants in self.roles().items() if isinstance(grants, dict)
                       and grants.get("*") == "admin")
        if named and not self.untrusted:
            return named
        return [user_name(self.owner_uid) if self.owner_uid is not None else "the root's owner"]


def load(root_path):
    """Read and check `<root>/policy.json`; an unreadable or malformed file is an AgentError to fix."""
    try:
        owner = os.stat(root_path).st_uid
    except FileNotFoundError:  # whoever makes it will own it
        return Policy(root_path, {}, False, None)
    except OSError as e:
        raise AgentError("cannot look at the root %s: %s" % (root_path, e.strerror), "policy_unreadable")
    path = os.path.join(root_path, FILE)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return Policy(root_path, {}, False, owner)
    except OSError as e:
        if os.path.islink(path):
            return Policy(root_path, {}, True, owner, "%s is a symbolic link" % path)
        raise AgentError("cannot read the server's policy %s: %s" % (path, e.strerror), "policy_unreadable")
    try:
        st = os.fstat(fd)
        raw = os.read(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)
    untrusted = _why_untrusted(path, st, owner)
    if untrusted:  # not read at all: whoever could write it must not turn "viewer only" into "nothing"
        return Policy(root_path, {}, True, owner, untrusted)
    try:
        if len(raw) > MAX_BYTES:
            raise AgentError("over %d KB" % (MAX_BYTES // 1024), "usage")
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
        check(data)
    except RecursionError:
        raise AgentError("the server's policy %s is not valid (nested too deeply): its owner must fix it" % path,
                         "policy_invalid")
    except (ValueError, AgentError) as e:
        raise AgentError("the server's policy %s is not valid (%s): its owner must fix it" % (path, e),
                         "policy_invalid")
    return Policy(root_path, data, True, owner, untrusted)


def _no_duplicates(pairs):
    """An object with a key twice is refused: json keeps the last, a person reading the file the first."""
    seen = set()
    for key, _value in pairs:
        if key in seen:
            raise AgentError("%r is given twice" % (key,), "usage")
        seen.add(key)
    return dict(pairs)


def _why_untrusted(path, st, owner):
    folder = os.path.dirname(path)
    fst = os.stat(folder)
    if not stat.S_ISREG(st.st_mode):
        return "%s is not a regular file" % path
    if st.st_uid not in (0, owner):
        return "%s is owned by %s, not by root or the root's owner %s" % (path, user_name(st.st_uid), user_name(owner))
    if st.st_mode & 0o022:
        return "%s is writable by %s (mode %04o): fix it with `chmod go-w %s`" % (
            path, "others" if st.st_mode & 0o002 else "its group", st.st_mode & 0o7777, path)
    if fst.st_mode & 0o022 and not fst.st_mode & stat.S_ISVTX:
        return "its folder %s is writable by others (mode %04o), who could replace it: `chmod go-w %s`" % (
            folder, fst.st_mode & 0o7777, folder)
    return ""


def check(data):
    """The file's shape: {"production": bool, "four_eyes": {"*"|MODEL: bool}, "roles": {PRINCIPAL: {"*"|MODEL: ROLE}}}."""
    if not isinstance(data, dict):
        raise AgentError("it must be a JSON object", "usage")
    unknown = set(data) - {"production", "roles", "four_eyes"}
    if unknown:
        raise AgentError("unknown keys %s" % ", ".join(sorted(unknown)), "usage")
    if not isinstance(data.get("production", False), bool):
        raise AgentError("'production' must be true or false", "usage")
    four_eyes = data.get("four_eyes", {})
    if not isinstance(four_eyes, dict) or not all(isinstance(v, bool) for v in four_eyes.values()):
        raise AgentError("'four_eyes' must map \"*\" or a model to true or false", "usage")
    for model in four_eyes:
        check_scope(model)
    roles = data.get("roles", {})
    if not isinstance(roles, dict):
        raise AgentError("'roles' must be an object", "usage")
    for principal, grants in roles.items():
        check_principal(principal)
        if not isinstance(grants, dict):
            raise AgentError("the roles of %s must be an object" % principal, "usage")
        for model, role in grants.items():
            check_scope(model)
            check_role(role)
    return data


def check_principal(name):
    if not isinstance(name, str) or not PRINCIPAL_RE.fullmatch(name):
        raise AgentError("invalid user or @group %r (a Unix name: letters, digits, _ . -)" % (name,), "usage")
    return name


def check_scope(model):
    if model != "*" and not (isinstance(model, str) and NAME_RE.fullmatch(model)):
        raise AgentError("invalid model %r (a model name or \"*\")" % (model,), "usage")
    return model


def check_role(role):
    if role not in ROLES:
        raise AgentError("invalid role %r (one of %s)" % (role, ", ".join(ROLES)), "usage")
    return role
