"""Open files for many servers at once. Each SSH connection holds a socket, and each channel the
shared reader watches a few descriptors more (about 6 per server with a live stream), so the usual
soft limit of 1024 runs out somewhere past 150 servers with a message about "Too many open files"
far from its cause. Raised to the hard limit at start (what the hard limit is for); never lowered."""
from __future__ import annotations

WANTED = 65536


def raise_open_files_limit(wanted: int = WANTED) -> int:
    """The soft RLIMIT_NOFILE after raising it towards min(wanted, hard); unchanged where the
    platform has no such limit (Windows) or refuses."""
    try:
        import resource
    except ImportError:
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft
