"""What Berth runs on a server, as the operator would type it: a summary of each agent command's
arguments and a command line that does the same by hand (the entry itself: app/store/activity.py)."""
from __future__ import annotations

import json
import shlex

BY_HAND_MAX = 64 * 1024  # a deploy's file list can be long; the summary always stays short


def summarize(request: dict) -> str:
    """`model=iris version=1.1.0 files=[20 items]`: the arguments an operator reads at a glance."""
    parts = []
    for key, value in request.items():
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
    """The same command for a terminal: the request goes on stdin as a here-document."""
    body = request.decode("utf-8", "replace")
    if len(body) > BY_HAND_MAX:
        body = body[:BY_HAND_MAX] + "  ... (request cut here: too long to show)"
    remote = " ".join(shlex.quote(a) for a in argv)
    line = " ".join([*(shlex.quote(p) for p in prefix), shlex.quote(remote) if prefix else remote])
    return f"{line} <<'BERTH_REQUEST'\n{body}\nBERTH_REQUEST"
