"""The agent's gate: before any command runs, the role it needs (roles.py) is compared with the role
the server's policy (policy.py) gives this process's Unix user for the model asked about. A denial
changes nothing but the journal (`permission.denied`); the policy commands themselves live here too."""
import json
import os
import time

from . import journal, policy, roles
from .layout import NAME_RE, AgentError
from .lock import ServerLock

LOCK_WAIT_S = 2.0  # a denial waits this long for a busy lock to journal itself, then says it could not


def enforce(ctx, command, req):
    """Return the policy when the command may run; raise `permission_denied` (journalled) otherwise."""
    pol = policy.load(ctx.root.path)
    identity = policy.me()
    try:
        need = roles.needed(command, pol.production)
    except KeyError:
        need = "admin"  # a command nobody declared a role for: refused to all but admins (a test forbids it)
    have, model = min(((pol.role_of(identity, m), m) for m in _models(ctx, command, req)),
                      key=lambda pair: roles.rank(pair[0]))
    if roles.rank(have) >= roles.rank(need):
        return pol
    where = ("this production server" if pol.production else "this server") + (" (model %s)" % model if model else "")
    message = "permission denied: `%s` on %s needs the %s role; you (%s) have %s. Ask an admin to grant it: %s" % (
        command, where, need, identity.user, have or "no role", ", ".join(pol.admins()))
    if pol.untrusted:
        message += ". Only viewer actions are allowed because the policy is not trusted: %s" % pol.untrusted
    extra = {"needed": need, "role": have, "user": identity.user, "admins": pol.admins(), "command": command}
    ids = req.get("event_ids") if isinstance(req.get("event_ids"), dict) else {}
    unjournalled = _journal_denial(ctx, identity, extra, model, message, ids.get("denied"))
    if unjournalled:
        message += " (not in the server's journal: %s)" % unjournalled
    raise AgentError(message + ".", "permission_denied", **extra)


def _models(ctx, command, req):
    """The models a command acts on, each needing the role: the one the request names and, for a job,
    an alert rule or an approval request named, the one it belongs to (naming model A must not act on B's job with A's role).
    [None] (every model's "*" role) when neither names one."""
    named = req.get("model") if isinstance(req.get("model"), str) and NAME_RE.fullmatch(req["model"]) else None
    owner = None
    if command.startswith(("job_", "alert_")) and isinstance(req.get("name"), str):
        try:
            if command.startswith("job_"):
                from .jobstore import JobDir
                owner = JobDir(ctx.root, req["name"]).read().get("model")
            else:
                from .alertstore import read_rule
                owner = read_rule(ctx.root, req["name"]).get("model")
        except (AgentError, OSError):
            owner = None  # no such job or rule (yet): the command itself says so
    elif command == "approve" and isinstance(req.get("id"), str):  # the stored request's model
        try:
            from .approvalstore import read, request_path
            record, _ = read(request_path(ctx.root, req["id"]))
            owner = record.get("model") if isinstance(record, dict) else None
        except (AgentError, OSError):
            owner = None
    owner = owner if isinstance(owner, str) and NAME_RE.fullmatch(owner) else None
    return [m for m in (named, owner) if m is not None] or [None]


def _journal_denial(ctx, identity, extra, model, detail, event_id):
    """'' once journalled; else why not (no root yet, no write access, a lock held too long)."""
    root = ctx.root
    if not os.path.isdir(root.meta):
        return "the root %s is not set up" % root.path
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            with ServerLock(root.lock, {"who": ctx.who(), "what": "permission.denied"}):
                journal.append(root, "permission.denied", "refused", ctx.actor, event_id, model=model,
                               unix_user=identity.user, groups=identity.groups, detail=detail,
                               needed=extra["needed"], role=extra["role"], command=extra["command"])
                return ""
        except AgentError as e:
            if e.code != "locked" or time.monotonic() > deadline:
                return str(e)
            time.sleep(0.1)
        except OSError as e:
            return e.strerror or str(e)


def whoami(ctx, req):
    pol = policy.load(ctx.root.path)
    me = policy.me()
    return {"user": me.user, "groups": me.groups, "roles": pol.roles_map(me), "production": pol.production,
            "policy": _state(pol)}


def policy_show(ctx, req):
    pol = policy.load(ctx.root.path)
    return {"path": pol.path, "state": _state(pol), "untrusted": pol.untrusted, "production": pol.production,
            "roles": pol.roles(), "admins": pol.admins(), "four_eyes": pol.data.get("four_eyes") or {}}


def _state(pol):
    return "untrusted" if pol.untrusted else ("trusted" if pol.exists else "none")


def policy_grant(ctx, req):
    return _grants(ctx, req, grant=True)


def policy_revoke(ctx, req):
    return _grants(ctx, req, grant=False)


def _grants(ctx, req, grant):
    principal = policy.check_principal(req.get("principal"))
    role = policy.check_role(req.get("role"))
    scope = policy.check_scope(req.get("model") or "*")

    def edit(data):
        grants = data.setdefault("roles", {})
        if grant:
            grants.setdefault(principal, {})[scope] = role
        else:
            if (grants.get(principal) or {}).get(scope) != role:
                raise AgentError("%s does not have the %s role on %s (has %s): nothing to revoke" % (
                    principal, role, scope, (grants.get(principal) or {}).get(scope) or "none"), "usage")
            del grants[principal][scope]
            if not grants[principal]:
                del grants[principal]
            if role == "admin" and scope == "*" and not any(g.get("*") == "admin" for g in grants.values()):
                raise AgentError("%s is the last admin of this server: grant admin to someone else first"
                                 % principal, "usage")
        return "%s %s %s on %s" % ("granted" if grant else "revoked", role, principal, scope)
    return _edit(ctx, req, "policy %s" % ("grant" if grant else "revoke"), edit, "roles")


def policy_set(ctx, req):
    """{"production": true|false}: whether deploy, rollback and experiments here need the releaser role;
    or {"four_eyes": true|false, "model": M}: whether such a change waits for a second releaser."""
    if "four_eyes" in req:
        return _four_eyes(ctx, req)
    production = req.get("production")
    if not isinstance(production, bool):
        raise AgentError("'production' must be true or false, not %r" % (production,), "usage")

    def edit(data):
        data["production"] = production
        return "production: %s" % ("true" if production else "false")
    return _edit(ctx, req, "policy set", edit, "production")


def _four_eyes(ctx, req):
    on = req.get("four_eyes")
    if not isinstance(on, bool):
        raise AgentError("'four_eyes' must be true or false, not %r" % (on,), "usage")
    scope = policy.check_scope(req.get("model") or "*")

    def edit(data):
        data.setdefault("four_eyes", {})[scope] = on
        return "four eyes on %s: %s" % (scope, "true" if on else "false")
    return _edit(ctx, req, "policy set", edit, "four_eyes")


def _edit(ctx, req, what, edit, key):
    """Change the policy under the server lock and journal `policy.changed` with `key` before and after."""
    root = ctx.root.ensure()
    me = policy.me()
    with ServerLock(root.lock, {"who": ctx.who(), "what": what}):
        pol = policy.load(root.path)  # again, under the lock
        if me.uid not in (0, pol.owner_uid):
            raise AgentError("only the root's owner (%s) or root can write %s, since a policy file anyone "
                             "else owns is not trusted: change it logged in as %s"
                             % (policy.user_name(pol.owner_uid), pol.path, policy.user_name(pol.owner_uid)),
                             "permission_denied")
        before = json.loads(json.dumps(pol.data)) if pol.exists else {}
        after = json.loads(json.dumps(before))
        if not pol.exists:  # the first policy: its writer keeps the admin role the default gave them
            after.setdefault("roles", {}).setdefault(me.user, {})["*"] = "admin"
        detail = edit(after)
        policy.check(after)
        _write(pol.path, after, 0o640 if root.shared() else 0o644)
        old, new = before.get(key, {} if key in ("roles", "four_eyes") else False), after.get(key)
        journal.append(root, "policy.changed", "ok", ctx.actor, (req.get("event_ids") or {}).get("outcome"),
                       unix_user=me.user, before=old, after=new, detail=detail)
    return {"path": pol.path, "before": old, "after": new, "detail": detail}


def _write(path, data, mode):
    """Atomically: a reader sees the old file or the new one, never half of one. `mode`: 0644, or in a
    shared root 0640 (its group reads it; others cannot even enter the root)."""
    tmp = "%s.tmp-%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
        os.fchmod(fd, mode)  # readable by every user of the root (whatever the umask), writable by its owner
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


COMMANDS = {"whoami": whoami, "policy_show": policy_show, "policy_grant": policy_grant,
            "policy_revoke": policy_revoke, "policy_set": policy_set}
