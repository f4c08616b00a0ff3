"""Four eyes for production (docs/permissions.md): a change the policy holds (`"four_eyes"`, or the
desktop asking for it) is not made; the agent stores it exactly as asked, journals
`approval.requested` and answers `approval_pending`. Another releaser's `approve` then performs that
stored change, never anything its own desktop sends; the requester cannot approve it, an expired
request cannot be, and a decision is made once (approvalstore.py). Request, decision and change are
journalled with the request's id. An approval is bound to what the approver was shown: `approve`
carries the request file's sha256 (`expect_sha256`, as `approvals` lists it as `digest`); the
stored file is read once, those bytes are hashed and, when they match, exactly those are performed."""
import os
import re
import time
import uuid
from datetime import datetime, timezone

from . import approvalstore as store
from . import blobs, journal, policy, releases, roles
from .layout import NAME_RE, AgentError, check_name
from .lock import ServerLock

HELD = ("deploy", "rollback", "experiment_start", "port.set")  # what four eyes holds on production
TRANSIENT = ("root", "actor", "event_ids", "desktop_head", "commit", "four_eyes", "expires_s")
DEFAULT_EXPIRY_S = 24 * 3600
MAX_EXPIRY_S = 7 * 86400
SHOWN_DECIDED_S = 7 * 86400  # `berth approvals` shows decided requests this long
MIN_DIGEST_HEX = 16  # an approver may bind to a prefix this long: 64 bits, beyond a second-preimage search
DIGEST_RE = re.compile(r"[0-9a-f]{%d,64}" % MIN_DIGEST_HEX)


def hold(ctx, command, req, pol):
    """Called before every command: return when it may run now; raise `approval_pending` when four
    eyes holds it (the request is stored and journalled first)."""
    req.pop("approval", None)  # only `approve` links a change to a request: never the desktop
    if command not in HELD and not (command == "experiment_stop" and req.get("promote")):
        return  # an experiment ended with --promote makes B current: a production change like a deploy
    model = req.get("model") if isinstance(req.get("model"), str) and NAME_RE.fullmatch(req["model"]) else None
    if not (pol.four_eyes(model) or req.get("four_eyes") is True):  # the policy's on production; the desktop's anywhere
        return
    root = ctx.root.ensure()
    model = check_name(req.get("model"))
    expiry = _expiry(req.get("expires_s"))
    if command == "deploy":  # the upload is hashed now, and kept (content-addressed) for the approver
        bad = blobs.commit(root, req.get("commit") or [])
        if bad:
            raise AgentError("%d uploaded file(s) arrived damaged or incomplete (hash mismatch) and were removed"
                             % len(bad), "corrupt_blob", bad=bad)
    stored = {k: v for k, v in req.items() if k not in TRANSIENT}
    folder = root.model(model).path
    readable = not os.path.exists(folder) or os.access(folder, os.R_OK | os.X_OK)
    current = root.model(model).current_version() if readable else None
    if command == "rollback" and not stored.get("to"):  # the target as it is now, not when approved
        if not readable:
            raise AgentError("name the release to roll back to (--to VERSION): you (%s) cannot read %s's releases "
                             "on this shared root" % (policy.me().user, model), "usage")
        stored["to"] = _release_before(root.model(model), current)
    me = policy.me()
    rid = uuid.uuid4().hex[:12]
    now = time.time()
    record = {"id": rid, "command": command, "model": model, "request": stored, "requested_by": me.user,
              "requested_uid": me.uid, "actor": ctx.actor, "requested_at": _iso(now), "requested_ts": now,
              "expires_at": _iso(now + expiry), "expires_ts": now + expiry, "reason": stored.get("reason") or "",
              "current": current if readable else "?", "why": "policy" if pol.four_eyes(model) else "asked by the desktop"}
    record["what"] = describe(record)
    ids = req.get("event_ids") if isinstance(req.get("event_ids"), dict) else {}
    with ServerLock(root.lock, {"who": ctx.who(), "what": "approval request %s %s" % (command, model)}):
        if command == "deploy":
            _share_blobs(root, stored.get("files") or [], me.uid)
        store.folder(root)
        digest = store.write_once(store.request_path(root, rid), record)
        journal.append(root, "approval.requested", "pending", ctx.actor, ids.get("requested"), model=model,
                       version=_version(record), sha256=stored.get("sha256"), request=rid, command=command,
                       unix_user=me.user, expires=record["expires_at"], digest=digest, reason=record["reason"],
                       detail=record["what"])
    raise AgentError("waiting for approval %s: four eyes (%s): %s waits for another %s to approve it (until %s)"
                     % (rid, record["why"], record["what"], roles.needed(command, pol.production),
                        record["expires_at"]),
                     "approval_pending", request=rid, expires_at=record["expires_at"], what=record["what"])


def approvals(ctx, req):
    """Pending requests, and those decided in the last week, newest first, with what each will change."""
    now = time.time()
    out = []
    for record, decision, digest in store.all_requests(ctx.root):
        shown = dict(_shown(record, decision, now), digest=digest)
        if shown["state"] == "pending" or now - (shown["decided_ts"] or record.get("expires_ts") or 0) < SHOWN_DECIDED_S:
            out.append(shown)
    return {"requests": out, "four_eyes": policy.load(ctx.root.path).data.get("four_eyes") or {}}


def decide(ctx, req):
    """Approve (or reject) request `id`. Returns (command, request) to perform, or (None, result)."""
    rid = store.check_id(req.get("id"))
    reject = req.get("reject") is True
    expect = check_digest(req.get("expect_sha256"))
    root = ctx.root.ensure()
    me = policy.me()
    ids = req.get("event_ids") if isinstance(req.get("event_ids"), dict) else {}
    with ServerLock(root.lock, {"who": ctx.who(), "what": "approval %s" % rid}):
        record, digest = store.read(store.request_path(root, rid))
        if not isinstance(record, dict):
            raise AgentError("there is no approval request %s on this server: `berth approvals` lists them" % rid,
                             "not_found")
        model = record.get("model")
        if req.get("model") not in (None, "", model):
            raise AgentError("approval %s is for model %s, not %s" % (rid, model, req.get("model")), "usage")
        decision, _ = store.read(store.decision_path(root, rid))
        if decision is not None:
            raise AgentError("approval %s was already %s by %s at %s: nothing to do" % (
                rid, decision.get("decision"), decision.get("by"), decision.get("at")),
                "already_decided")
        if expect is not None and not reject and not digest.startswith(expect):
            _changed(ctx, root, record, rid, expect, digest, me, ids.get("changed"))
        if store.journalled_digest(root, rid) != digest:
            raise AgentError("approval request %s is not the one the journal recorded (its file was changed or "
                             "the journal line is missing): it cannot be approved; ask for the change again" % rid,
                             "approval_tampered")
        _check_approver(ctx, root, record, me, reject, ids)
        if not reject and time.time() > float(record.get("expires_ts") or 0):
            _decide(root, rid, "expired", me, "", ctx, ids.get("expired"), record, "approval.expired", "expired")
            raise AgentError("approval %s expired at %s (asked by %s at %s): the change was not made; ask for it "
                             "again" % (rid, record["expires_at"], record["requested_by"], record["requested_at"]),
                             "approval_expired")
        if not reject and record["command"] == "deploy":
            _verify_blobs(root, record["request"].get("files") or [], me.uid)
        verdict = "rejected" if reject else "approved"
        _decide(root, rid, verdict, me, req.get("reason") or "", ctx, ids.get("approved"), record,
                "approval." + verdict, "ok")
    if reject:
        return None, {"id": rid, "decision": "rejected", "detail": "rejected %s: %s" % (rid, record["what"])}
    change = dict(record["request"], actor=ctx.actor, event_ids=ids, desktop_head=req.get("desktop_head"),
                  approval=rid)
    return record["command"], change


def check_digest(value):
    """The digest an approver was shown: None (not bound: an older desktop), or 16 to 64 hex digits."""
    if value is None:
        return None
    if not isinstance(value, str) or not DIGEST_RE.fullmatch(value.lower()):
        raise AgentError("invalid request digest %r: give the sha256 `berth approvals` showed (%d to 64 hex "
                         "digits)" % (value, MIN_DIGEST_HEX), "usage")
    return value.lower()


def _changed(ctx, root, record, rid, expect, digest, me, event_id):
    """The request is not the one the approver looked at: nothing is decided, the journal says so."""
    journal.append(root, "approval.changed", "refused", ctx.actor, event_id, model=record.get("model"),
                   request=rid, command=record.get("command"), unix_user=me.user, expected=expect, digest=digest,
                   detail="request %s changed since the approver looked at it" % rid)
    raise AgentError("approval %s changed since you looked at it (its sha256 is now %s…, you approved %s…): "
                     "nothing was decided; look again with `berth approvals`" % (rid, digest[:16], expect[:16]),
                     "approval_changed", request=rid, digest=digest)


def _check_approver(ctx, root, record, me, reject, ids):
    """The requester may withdraw (reject) their change, never approve it; the approver needs the role
    the change itself needs for the request's model (releaser on production). A refusal is journalled
    as `permission.denied`."""
    pol = policy.load(root.path)
    need = roles.needed(record["command"], pol.production)
    why = None
    if me.uid == record.get("requested_uid") and not reject:
        why = ("permission denied: you (%s) asked for %s yourself (%s); four eyes needs another %s to "
               "approve it" % (me.user, record["id"], record["what"], need))
    else:
        have = pol.role_of(me, record["model"])
        if roles.rank(have) < roles.rank(need):
            why = ("permission denied: deciding %s needs the %s role for %s; you (%s) have %s"
                   % (record["id"], need, record["model"], me.user, have or "no role"))
    if why:
        journal.append(root, "permission.denied", "refused", ctx.actor, ids.get("denied"), model=record["model"],
                       unix_user=me.user, groups=me.groups, detail=why, needed=need, command="approve",
                       request=record["id"])
        raise AgentError(why + ".", "permission_denied", needed=need, user=me.user, request=record["id"])


def _decide(root, rid, verdict, me, reason, ctx, event_id, record, action, outcome):
    try:
        store.write_once(store.decision_path(root, rid), {"decision": verdict, "by": me.user, "at": store.now_iso(),
                                                          "ts": time.time(), "reason": reason})
    except FileExistsError:
        raise AgentError("approval %s was decided at the same moment by someone else: nothing to do" % rid,
                         "already_decided")
    journal.append(root, action, outcome, ctx.actor, event_id, model=record["model"], version=_version(record),
                   sha256=record["request"].get("sha256"), request=rid, command=record["command"],
                   unix_user=me.user, requested_by=record["requested_by"], reason=reason, detail=record["what"])


def _shown(record, decision, now):
    state = (decision or {}).get("decision") or ("expired" if now > float(record.get("expires_ts") or 0)
                                                 else "pending")
    keys = ("id", "command", "model", "requested_by", "requested_at", "expires_at", "reason", "what", "current")
    return dict({k: record.get(k) for k in keys}, version=_version(record), sha256=record["request"].get("sha256"),
                state=state, decided_by=(decision or {}).get("by"), decided_at=(decision or {}).get("at"),
                decided_ts=(decision or {}).get("ts"), decision_reason=(decision or {}).get("reason"))


def describe(record):
    req, command, model = record["request"], record["command"], record["model"]
    if command == "deploy":
        return "deploy %s %s (bundle sha256 %s…) in place of %s" % (
            model, req.get("version"), str(req.get("sha256"))[:12], _current(record, "nothing"))
    if command == "rollback":
        return "roll %s back from %s to %s" % (model, _current(record, "nothing"), req.get("to"))
    if command == "port.set":
        return "move %s to port %s" % (model, req.get("port"))
    if command == "experiment_stop":
        return "end the experiment on %s and make its B current (--promote)" % model
    return "start an experiment on %s (%s)" % (model, ", ".join("%s=%s" % (k, req[k]) for k in sorted(req)
                                                                  if k not in ("model", "reason")))


def _current(record, none):
    current = record.get("current")
    return "the current release" if current == "?" else (current or none)


def _version(record):
    req = record["request"]
    return req.get("version") or req.get("to") or req.get("b")


def _expiry(value):
    if value is None:
        return DEFAULT_EXPIRY_S
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_EXPIRY_S:
        raise AgentError("an approval's time limit is 1 s to 7 days, not %r" % (value,), "usage")
    return float(value)


def _release_before(model, current):
    versions = [r["version"] for r in releases.list_releases(model)]
    if current not in versions or versions.index(current) == 0:
        raise AgentError("%s has no release before %s to roll back to" % (model.name, current), "no_release")
    return versions[versions.index(current) - 1]


def _share_blobs(root, files, uid):
    """On a shared root, the request's blobs this user uploaded become readable by the group, so the
    approver's agent can assemble the release from them (still read-only: 0440)."""
    if not os.stat(root.blobs).st_mode & 0o040:
        return
    for sha in {f.get("sha256") for f in files}:
        path = blobs.blob_path(root, sha)
        try:
            if os.stat(path).st_uid == uid:
                os.chmod(path, 0o440)
        except OSError:
            pass  # missing: the deploy itself says which, once approved


def _verify_blobs(root, files, uid):
    """Blobs someone else owns are hashed before an approved deploy uses them: the requester could
    have rewritten their own files since they were verified."""
    for sha in sorted({f.get("sha256") for f in files}):
        path = blobs.blob_path(root, sha)
        try:
            if os.stat(path).st_uid == uid:
                continue
            good = blobs.file_sha256(path) == sha
        except OSError as e:
            raise AgentError("cannot read uploaded content %s… for this deploy: %s; ask for the change again"
                             % (sha[:12], e.strerror), "missing_blob")
        if not good:
            raise AgentError("uploaded content %s… changed since the request (hash mismatch): not approved"
                             % sha[:12], "corrupt_blob")


def _iso(ts):
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


COMMANDS = {"approvals": approvals}
