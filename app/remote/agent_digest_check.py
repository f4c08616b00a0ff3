"""The packaged app refuses to send servers an agent other than the one it was built with: its
sources are plain files in the package folder (they are uploaded byte for byte), and the digest the
servers check is computed from those same files, so an edited one would be installed everywhere as
a new agent version. The build's digest lives in the executable's archive (`berth_build`, written by
packaging/build_info.py); from a source checkout there is none and the checkout's agent is the agent."""
from __future__ import annotations

import functools
import importlib
from pathlib import Path

from app import errors
from app.agent import queries
from app.agent.queries import agent_digest
from app.errors import BerthError


@functools.lru_cache(maxsize=None)
def shipped_digest() -> str:
    """agent_digest(), after checking it against the build's; raises BerthError (agent_modified) if not."""
    digest = agent_digest()
    try:
        built = importlib.import_module("berth_build").AGENT_DIGEST
    except (ImportError, AttributeError):
        return digest
    if digest != built:
        folder = Path(queries.__file__).resolve().parent  # the files agent_install uploads
        raise BerthError(f"the Berth agent in this installation ({folder}) differs from the one it was built "
                         f"with (sha256 {digest[:16]}, built {built[:16]}), so Berth will not install it on any "
                         "server: reinstall Berth from its download", code=errors.AGENT_MODIFIED,
                         detail={"path": str(folder), "digest": digest, "built": built})
    return digest
