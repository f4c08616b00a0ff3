"""Who may do what on a server (docs/permissions.md): the agent decides, from the Unix user this
desktop logs in as; these only ask it, and audit a policy change on this side too."""
from __future__ import annotations

import json

from app.audit.log import AuditLog
from app.remote.transport import Transport

from .audited import AuditedChange

ROLES = ("viewer", "operator", "deployer", "releaser", "admin")


def whoami(transport: Transport) -> dict:
    """{user, groups, roles: {"*": ROLE, MODEL: ROLE}, production, policy} as the server sees this login."""
    return transport.agent("whoami", {})


def show(transport: Transport) -> dict:
    return transport.agent("policy_show", {})


def change(transport: Transport, audit: AuditLog, grant: bool, principal: str, role: str, model: str = "") -> dict:
    """Grant or revoke `role` for a user or @group (on `model`, else every model); audited
    `policy.changed` with the grants before and after, here and in the server's journal."""
    verb = "grant" if grant else "revoke"
    scope = model or "*"
    return _audited(transport, audit, f"{verb} {role} to {principal} on {scope}", "policy_" + verb, model,
                    principal=principal, role=role, **({"model": model} if model else {}))


def set_production(transport: Transport, audit: AuditLog, production: bool) -> dict:
    """Mark the server production (deploy, rollback, experiments need releaser) or not; audited."""
    return _audited(transport, audit, f"production: {str(production).lower()}", "policy_set", "",
                    production=production)


def set_four_eyes(transport: Transport, audit: AuditLog, on: bool, model: str = "") -> dict:
    """Make a production server's deploys, rollbacks, port changes and experiments (of `model`, else of
    every model) wait for a second releaser's approval, or not; audited."""
    return _audited(transport, audit, f"four eyes on {model or '*'}: {str(on).lower()}", "policy_set", model,
                    four_eyes=on, **({"model": model} if model else {}))


def _audited(transport: Transport, audit: AuditLog, what: str, command: str, audited_model: str, **params) -> dict:
    trail = AuditedChange(audit, "policy.changed", server=transport.name, ssh_user=transport.ssh_user,
                          model=audited_model)
    trail.begin(detail=what)
    with trail.outcome():
        result = transport.agent(command, trail.request(transport.ssh_user, **params))
    trail.audit.finish(trail.started, "ok", id=trail.outcome_id, detail=result.get("detail", ""),
                       old=json.dumps(result.get("before", {}), sort_keys=True),
                       new=json.dumps(result.get("after", {}), sort_keys=True))
    return result


def init_shared_root(transport: Transport, audit: AuditLog, group: str, writers: str | None = None) -> dict:
    """Set the server's root up for the Unix group `group` (sharedroot.py), its models writable by
    `writers` when given; {"changes": [...]}. Audited `root.shared` here and in the server's journal,
    under one id, when anything changed."""
    trail = AuditedChange(audit, "root.shared", server=transport.name, ssh_user=transport.ssh_user, model="")
    trail.begin(detail=f"share the root with the group {group}" + (f", writers {writers}" if writers else ""))
    params = {"group": group} if writers is None else {"group": group, "writers": writers}
    with trail.outcome():
        result = transport.agent("init_shared_root", trail.request(transport.ssh_user, **params))
    trail.audit.finish(trail.started, "ok", id=trail.outcome_id,
                       detail=f"{len(result['changes'])} change(s) for the group {group}")
    return result


def edits(before: dict, after: dict) -> list[tuple]:
    """The agent commands that turn policy `before` into `after` ({"production", "roles"} each), for
    the console's editor: grants first (a role changed is a grant: it replaces), then revokes (so the
    last-admin rule sees the new admins), then the production flag. Each is (verb, principal, role, model)
    or ("production", value)."""
    old, new = _grants(before), _grants(after)
    out = [("grant", who, role, scope) for (who, scope), role in sorted(new.items()) if old.get((who, scope)) != role]
    out += [("revoke", who, role, scope) for (who, scope), role in sorted(old.items()) if (who, scope) not in new]
    if bool(before.get("production")) != bool(after.get("production")):
        out.append(("production", bool(after.get("production"))))
    return out


def describe(edit: tuple) -> str:
    """One line of the editor's diff."""
    if edit[0] == "production":
        return f"~ production: {str(not edit[1]).lower()} -> {str(edit[1]).lower()}"
    verb, who, role, scope = edit
    return f"{'+' if verb == 'grant' else '-'} {who}: {role} on {'every model' if scope == '*' else scope}"


def apply(transport: Transport, audit: AuditLog, edit: tuple) -> dict:
    if edit[0] == "production":
        return set_production(transport, audit, edit[1])
    verb, who, role, scope = edit
    return change(transport, audit, verb == "grant", who, role, "" if scope == "*" else scope)


def _grants(policy: dict) -> dict:
    return {(who, scope): role for who, grants in (policy.get("roles") or {}).items() for scope, role in grants.items()}
