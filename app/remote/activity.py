"""What Berth runs on a server, as the operator would type it: a summary of each agent command's
arguments and a command line that does the same by hand (the entry itself: app/store/activity.py)."""
from __future__ import annotations

import json
import shlex

BY_HAND_MAX = 64 * 1024  # a deploy's file list can be long; the summary always stays short
# secrets a request may carry (alert_smtp_set: the relay's password; job_add: the databases' passwords
# by URL): never in the log, which is kept in SQLite; the keys (e.g. the database URLs) stay
SECRET_KEYS = ("password", "db_passwords", "index_password")
HIDDEN = "<hidden: in the keyring>"


def redacted(request: dict) -> dict:
    out = {k: ({u: HIDDEN for u in v} if isinstance(v, dict) else HIDDEN if v else v) if k in SECRET_KEYS else v
           for k, v in request.items()}
    if isinstance(out.get("notify"), list):  # alert_add: a webhook URL's path is often its token
        out["notify"] = [_channel(c) for c in out["notify"]]
    return out


def _channel(channel):
    from app.agent.alertrules import shown_url

    if isinstance(channel, dict) and isinstance(channel.get("url"), str):
        return dict(channel, url=shown_url(channel["url"]))
    if isinstance(channel, str) and channel.partition(":")[0] in ("webhook", "alertmanager"):
        kind, _, url = channel.partition(":")
        return f"{kind}:{shown_url(url)}"
    return channel


def summarize(request: dict) -> str:
    """`model=iris version=1.1.0 files=[20 items]`: the arguments an operator reads at a glance."""
    parts = []
    for key, value in redacted(request).items():
        if key in ("root", "actor", "event_ids", "desktop_head"):
            continue
        if isinstance(value, (list, dict)):
            text = f"[{len(value)} items]" if len(value) > 3 or key in ("files", "manifest") else \
                json.dumps(value, separators=(",", ":"))
        else:
            text = str(value)
        parts.append(f"{key}={text if len(text) <= 60 else text[:57] + '...'}")
    return " ".join(parts)


def by_hand(prefix: list[str], argv: list[str], request: bytes) -> str:
    """The same command for a terminal: the request goes on stdin as a here-document (a secret in
    it replaced by a placeholder)."""
    body = _without_secrets(request.decode("utf-8", "replace"))
    if len(body) > BY_HAND_MAX:
        body = body[:BY_HAND_MAX] + "  ... (request cut here: too long to show)"
    remote = " ".join(shlex.quote(a) for a in argv)
    line = " ".join([*(shlex.quote(p) for p in prefix), shlex.quote(remote) if prefix else remote])
    return f"{line} <<'BERTH_REQUEST'\n{body}\nBERTH_REQUEST"


def _without_secrets(body: str) -> str:
    if not any(f'"{key}"' in body for key in (*SECRET_KEYS, "notify")):
        return body
    try:
        request = json.loads(body)
    except ValueError:
        request = None
    if not isinstance(request, dict):
        return "(not shown: the request may hold a secret)"
    return json.dumps(redacted(request))


def ssh_argv(target, known_hosts_files: list[str], default_keys: list[str] = ()) -> list[str]:
    """`ssh` reaching `target` (a sshconfig.Endpoint) from a fresh shell: its key files (`-i`), port,
    the files holding the host keys Berth trusts (UserKnownHostsFile) with StrictHostKeyChecking=yes,
    so ssh refuses any key Berth would refuse; jump hosts as nested ProxyCommands, because `-J`
    would reach them with the user's own ~/.ssh (no key, no known host) and fail."""
    known = " ".join(f'"{f}"' if any(c.isspace() for c in f) else f for f in known_hosts_files)

    def base(ep) -> list[str]:
        keys = list(ep.identity_files) or list(default_keys)
        argv = ["ssh", *(a for k in keys for a in ("-i", k)), "-p", str(ep.port),
                "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes"]
        if ep.identities_only and keys:
            argv += ["-o", "IdentitiesOnly=yes"]
        return argv

    def proxy(hops) -> list[str]:
        if not hops:
            return []
        hop, rest = hops[-1], hops[:-1]
        words = [shlex.quote(a).replace("%", "%%") for a in base(hop) + proxy(rest)]
        # each level's ssh expands %-tokens once: inner levels are escaped, this level's -W is not
        return ["-o", "ProxyCommand=" + " ".join([*words, "-W", "'[%h]:%p'",
                                                  shlex.quote(f"{hop.user}@{hop.host}").replace("%", "%%")])]

    return [*base(target), *proxy(list(target.jumps)), f"{target.user}@{target.host}"]
