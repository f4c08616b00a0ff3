"""Where a job may read and write: not in Berth's own root (an inbox's files are moved away, an
output is written), checked at job_add and again by each run (a folder swapped for a symlink since)."""
import os

from . import pgurl
from .jobinputs import sqlite_path
from .layout import AgentError


def _inside(path, folder):
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def not_berths_own(root, source, output):
    """An inbox's files are moved away and an output is written: neither may be Berth's own files
    (its journal, state, releases: through a symlink too), nor the output be taken as an input."""
    inbox = source.get("path") if source.get("kind") == "dir" else None
    if inbox is not None and _inside(inbox, root.path):
        raise AgentError("the input folder %s is inside Berth's own folder %s; use a folder outside it" % (
            inbox, root.path), "bad_input")
    if pgurl.is_pg(output.get("url")):
        return
    path = sqlite_path(output["url"], "output url")
    if _inside(path, root.path):
        raise AgentError("the output %s is inside Berth's own folder %s; write it outside" % (path, root.path),
                         "bad_output")
    if inbox is not None and _inside(os.path.dirname(path), inbox):
        raise AgentError("the output %s is in the input folder %s, where a run would take it as input; "
                         "write it elsewhere" % (path, inbox), "bad_output")
