"""The module the package carries inside its executable's archive (`berth_build`, read by
app/remote/agent_digest_check.py): the digest of the agent this build shipped. The agent's sources
sit as plain files in `_internal/app/agent/` (they are uploaded byte for byte), so one edited there
would otherwise be installed on every server as a new agent version, without a word."""
from __future__ import annotations

import hashlib
from pathlib import Path

NAME = "berth_build"


def agent_digest(folder: Path) -> str:
    """The same sum as app/agent/queries.py: agent_digest (name, NUL, bytes per *.py, sorted)."""
    h = hashlib.sha256()
    for path in sorted(Path(folder).iterdir(), key=lambda p: p.name):
        if path.name.endswith(".py"):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def write(out: Path, agent: Path) -> Path:
    """out/berth_build.py for `agent` (the checkout's app/agent); returns the folder to put on pathex."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{NAME}.py").write_text(f'"""Written by packaging/build_info.py at build time."""\n'
                                    f'AGENT_DIGEST = "{agent_digest(agent)}"\n')
    return out
