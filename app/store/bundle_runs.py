"""Where each bundle (by content sha256) has run: every successful deploy this desktop's audit log
holds (its own, and the ones imported from server journals), with the server's environment today.
`berth bundle where SHA` shows it; `require_staging_first` asks it before a production deploy."""
from __future__ import annotations

import re

from .servers import ServerRegistry

HEX = re.compile(r"[0-9a-f]{8,64}\Z")
DEPLOYED = ("deploy",)


def bundle_runs(db, servers: ServerRegistry, sha: str) -> list[dict]:
    """[{"server", "environment", "model", "version", "sha256", "first", "last"}] for bundles whose
    sha256 starts with `sha` (8 to 64 hex digits), first deploy first. A server removed since has
    environment None."""
    sha = sha.strip().lower()
    if not HEX.match(sha):
        raise ValueError(f"{sha!r} is not a bundle sha256 (8 to 64 hex digits, as `berth releases` shows)")
    rows = db.execute(
        "select server, model, version, sha256, min(ts), max(ts) from events where action in (%s) and outcome = 'ok' "
        "and sha256 like ? group by server, sha256 order by min(ts)" % ",".join("?" * len(DEPLOYED)),
        [*DEPLOYED, sha + "%"]).fetchall()
    known = {s.name: s.environment for s in servers.list()}
    return [{"server": server, "environment": known.get(server), "model": model, "version": version,
             "sha256": full, "first": first, "last": last} for server, model, version, full, first, last in rows]
