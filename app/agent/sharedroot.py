"""`berth server init-shared-root S --group GROUP [--writers W]`: a root several Unix users share, set
up as an admin would. Group ownership and setgid folders let the team's members reach it (nobody else:
others get no bits, so a user without a role cannot read the request log or the journal). Without
writers, what each member writes is group-readable, never group-writable (umask 027, `SHARED_UMASK`),
so a release, its logs and its runner belong to its deployer. With writers (W, the deployers), the
folders the agent and runners write (models, jobs, blobs, envs) belong to W and what is made there is
group-writable (umask 002): any member of W changes any model; the team's other members (viewers) read
through the "others" bits, which nobody outside the team can use (the root is 2750). The agent's own
files stay private to each user (`.berth/agent/<user>/`), checked before each use as everywhere.
Nothing is changed through a symbolic link: a link where a folder is expected stops it first."""
import grp
import json
import os
import stat

from . import journal, policy
from .layout import SHARED_FILE, AgentError
from .lock import ServerLock

# (path under the root, kind, mode): the shared layout; "." is the root itself. Folders are setgid so
# what is made in them gets the group; the root is not group-writable (the policy in it must not be).
LAYOUT = (
    (".", "dir", 0o2750),
    (".berth", "dir", 0o2770),
    (".berth/blobs", "dir", 0o2770),
    (".berth/envs", "dir", 0o2770),
    (".berth/agent", "dir", 0o3770),  # sticky: each user's agent folder is theirs alone
    (".berth/approvals", "dir", 0o3770),  # sticky: nobody replaces another member's four-eyes request
    ("models", "dir", 0o3770),
    ("jobs", "dir", 0o3770),  # sticky: each member's jobs are theirs, run by their scheduler as them
    (".berth/lock", "file", 0o660),
    ("journal.jsonl", "file", 0o660),
)
# With a writers group (`--writers W`, a subset of GROUP): what the agent and runners make is group-writable
# for W only (umask 002, `WRITERS_UMASK`), so any member of W can deploy, roll back and stop any model;
# GROUP's other members (viewers) read it through the "others" bits (nobody outside GROUP enters the root).
# The journal, the lock, the agents' folder, the policy and the mark stay GROUP's.
WRITERS_LAYOUT = (
    (".", "dir", 0o2750, False),
    (".berth", "dir", 0o2775, True),
    (".berth/blobs", "dir", 0o2775, True),
    (".berth/envs", "dir", 0o2775, True),
    (".berth/agent", "dir", 0o3770, False),
    (".berth/approvals", "dir", 0o3770, False),
    ("models", "dir", 0o3775, True),  # sticky: nobody removes another's model folder
    ("jobs", "dir", 0o3775, True),
    (".berth/lock", "file", 0o660, False),
    ("journal.jsonl", "file", 0o660, False),
)
GROUP_RE = policy.PRINCIPAL_RE


def _group_id(group, me, what):
    if not isinstance(group, str) or not GROUP_RE.fullmatch(group) or group.startswith("@"):
        raise AgentError("invalid %s %r (a Unix group name)" % (what, group), "usage")
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise AgentError("there is no group %s on this server: create it first (groupadd %s) and add the "
                         "team's users to it (usermod -aG %s USER)" % (group, group, group), "usage")
    if me.uid != 0 and group not in me.groups:
        raise AgentError("you (%s) are not in the group %s: add yourself (usermod -aG %s %s), log in again, "
                         "and run it again" % (me.user, group, group, me.user), "usage")
    return gid


def init_shared_root(ctx, req):
    """{"group": GROUP, "writers": W or absent}: make the root shared by GROUP (W: the members who may
    change any model); returns {"changes": [...], "group": ..., "writers": ...}."""
    group, writers = req.get("group"), req.get("writers")
    me = policy.me()
    gid = _group_id(group, me, "group")
    wgid = None if writers is None else _group_id(writers, me, "writers group")
    if wgid == gid:
        raise AgentError("the writers group must not be the group %s itself: viewers are in it too (make a "
                         "group of the deployers, e.g. groupadd %s-writers)" % (group, group), "usage")
    root = ctx.root
    _refuse_links(root.path)
    if os.path.isdir(root.path):
        owner = os.stat(root.path).st_uid
        if me.uid not in (0, owner):
            raise AgentError("the root %s belongs to %s: only its owner or root can share it"
                             % (root.path, policy.user_name(owner)), "permission_denied")
    root.ensure()
    changes = []
    with ServerLock(root.lock, {"who": ctx.who(), "what": "init shared root"}):
        layout = LAYOUT if wgid is None else WRITERS_LAYOUT
        for entry in layout:
            rel, kind, mode = entry[:3]
            gid_here = wgid if len(entry) > 3 and entry[3] else gid
            path = os.path.normpath(os.path.join(root.path, rel))
            if kind == "dir" and not os.path.lexists(path):
                os.mkdir(path, 0o700)
                changes.append("made %s" % path)
            if kind == "file" and not os.path.lexists(path):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
                changes.append("made %s" % path)
            _set(path, gid_here, mode, changes)
        if os.path.lexists(os.path.join(root.path, policy.FILE)):
            _set(os.path.join(root.path, policy.FILE), gid, 0o640, changes)
        tree_gid = gid if wgid is None else wgid
        _set_tree(root.models, tree_gid, changes, writable=wgid is not None)
        _set_tree(root.blobs, tree_gid, changes, files=0o440)
        _set_tree(os.path.join(root.meta, "envs"), tree_gid, changes, writable=wgid is not None)
        _set_tree(os.path.join(root.path, "jobs"), tree_gid, changes, writable=wgid is not None)
        _set_tree(os.path.join(root.meta, "approvals"), gid, changes, files=0o640)  # requests: not group-writable
        _write_marker(root, group, gid, changes, writers, wgid)
        if changes:
            journal.append(root, "root.shared", "ok", ctx.actor, (req.get("event_ids") or {}).get("outcome"),
                           unix_user=me.user, group=group, detail="%d change(s)" % len(changes))
    return {"root": root.path, "group": group, "writers": writers, "changes": changes}


def _refuse_links(path):
    """A link on the way (the root, a parent, or a folder of the layout) could send a chmod elsewhere."""
    real = os.path.realpath(path)
    if real != os.path.normpath(path):
        raise AgentError("the root %s goes through a symbolic link (it is %s): use the real path as the "
                         "server's root" % (path, real), "usage")
    for entry in LAYOUT + ((policy.FILE, "file", 0),):
        p = os.path.join(path, entry[0])
        if os.path.islink(p):
            raise AgentError("%s is a symbolic link: remove it (Berth changes nothing through a link)" % p, "usage")


def _set(path, gid, mode, changes):
    """Group and mode of one file or folder, through a descriptor opened without following a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if st.st_gid != gid:
            os.fchown(fd, -1, gid)
            changes.append("group of %s: %s" % (path, grp.getgrgid(gid).gr_name))
            st = os.fstat(fd)  # a chown drops the setgid bit
        if stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)
            changes.append("mode of %s: %04o -> %04o" % (path, stat.S_IMODE(st.st_mode), mode))
    finally:
        os.close(fd)


def _set_tree(top, gid, changes, files=None, writable=False):
    """What members made before: the group, readable (and folders enterable) by it, nothing for others
    (`writable`: writable by the writers group, readable by the others, who are GROUP's viewers);
    links are left alone."""
    for folder, dirs, names in os.walk(top):
        for name in dirs + names:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode) or not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                continue
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode) and writable:
                want = (mode & 0o7700) | 0o2075
            elif stat.S_ISDIR(st.st_mode):
                want = (mode & 0o7700) | 0o2050 | (mode & 0o020)  # keep a group-write a member needs
            elif files is not None:
                want = files
            else:
                x = mode & 0o100
                want = (mode & 0o700) | (0o064 | x >> 3 | x >> 6 if writable else 0o040 | x >> 3)
            try:
                _set(path, gid, want, changes)
            except OSError as e:  # another member's file: they (or root) run it again
                changes.append("could not change %s: %s" % (path, e.strerror))


def _write_marker(root, group, gid, changes, writers=None, wgid=None):
    path = os.path.join(root.meta, SHARED_FILE)
    mark = {"group": group, "gid": gid}
    if wgid is not None:
        mark.update(writers=writers, writers_gid=wgid)
    body = json.dumps(mark, sort_keys=True) + "\n"
    try:
        with open(path) as f:
            if f.read() == body:
                _set(path, gid, 0o640, changes)
                return
    except FileNotFoundError:
        pass
    tmp = path + ".tmp-%d" % os.getpid()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        os.write(fd, body.encode())
        os.fchown(fd, -1, gid)
        os.fchmod(fd, 0o640)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    changes.append("marked %s as shared by the group %s%s (%s)" % (
        root.path, group, "" if wgid is None else ", writable by %s" % writers, path))
COMMANDS = {"init_shared_root": init_shared_root}
