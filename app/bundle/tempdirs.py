"""Temp folders for unpacked archives, named after the process that made them, so the next Berth
removes what a killed one left (a SIGKILLed deploy of a .tar.gz used to leave its copy for good)."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from app.agent.runnerproc import pid_alive

PATTERN = re.compile(r"berth-(bundle|check)-(\d+)-")


def make_temp(kind: str) -> Path:
    """A new private temp folder; first, the leftovers of dead processes go."""
    sweep()
    return Path(tempfile.mkdtemp(prefix=f"berth-{kind}-{os.getpid()}-"))


def sweep(base: str | None = None) -> list[str]:
    """Remove temp folders whose process is gone; returns what was removed."""
    base = base or tempfile.gettempdir()
    removed = []
    try:
        names = os.listdir(base)
    except OSError:
        return removed
    me = os.getpid()
    for name in names:
        found = PATTERN.match(name)
        if not found or int(found.group(2)) == me or pid_alive(int(found.group(2))):
            continue
        path = os.path.join(base, name)
        try:
            if os.stat(path).st_uid != os.getuid():
                continue  # another user's: not ours to remove
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed
