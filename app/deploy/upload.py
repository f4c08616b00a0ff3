"""Send the blobs a server lacks. Each goes to `.partial-<sha>` in the server's blob store; the agent
hashes it and gives it its final name when the deploy starts (never before), so a cut upload leaves
only partials. The next deploy resumes a partial from where it stopped, after checking that its
bytes are the start of this very file (the server reports their hash)."""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.bundle import FileEntry
from app.remote.transport import SendJob, SendStopped, Transport

from .errors import OperationFailed
from .progress import Progress


def unique_blobs(files: list[FileEntry], missing: set[str]) -> list[FileEntry]:
    seen: set[str] = set()
    out = []
    for f in files:
        if f.sha256 in missing and f.sha256 not in seen:
            seen.add(f.sha256)
            out.append(f)
    return out


@dataclass
class UploadResult:
    sent: int  # bytes that crossed the network
    resumed: int  # bytes a cut upload had already left on the server, checked and kept
    hashes: list[str]  # the blobs the agent must commit


def resume_points(blobs: list[FileEntry], partials: dict) -> dict[str, int]:
    """Where each blob's upload starts: the size of its partial on the server when that partial's
    hash equals the hash of as many bytes of the local file, else 0."""
    points = {}
    for b in blobs:
        p = partials.get(b.sha256) or {}
        size = int(p.get("size") or 0)
        points[b.sha256] = size if 0 < size <= b.size and _prefix_sha256(b.source, size) == p.get("sha256") else 0
    return points


def upload_blobs(transport: Transport, blob_dir: str, blobs: list[FileEntry], emit: Callable,
                 cancel: threading.Event | None = None, partials: dict | None = None) -> UploadResult:
    """Upload `blobs`; emits Progress("upload") with bytes done, total and rate."""
    points = resume_points(blobs, partials or {})
    jobs = [SendJob(b.source, f"{blob_dir}/.partial-{b.sha256}", points[b.sha256], b.size) for b in blobs]
    total = sum(j.size - j.offset for j in jobs)
    resumed = sum(j.offset for j in jobs)
    if resumed:
        emit(Progress("upload", f"resuming: {resumed:,} bytes of an earlier upload are already on the server",
                      0, total))
    meter = _Meter(total, emit)
    stop = (lambda: cancel.is_set()) if cancel is not None else (lambda: False)
    try:
        transport.send([j for j in jobs if j.offset < j.size], meter.add, stop)
    except SendStopped:
        raise OperationFailed("upload cancelled; nothing on the server changed (what was sent is kept, and the "
                              "next deploy resumes it)", code="cancelled") from None
    except (OSError, EOFError) as e:
        full = _no_space(transport, jobs, meter.done, e)
        if full is not None:
            raise OperationFailed(full, code="no_space") from None
        raise OperationFailed(f"upload failed: {str(e) or type(e).__name__}; the server was not changed, and the next deploy resumes "
                              f"where this one stopped", code="upload") from None
    meter.report(force=True)
    return UploadResult(meter.done, resumed, [b.sha256 for b in blobs])


class _Meter:
    """Bytes sent by any number of threads, reported at most every 0.1 s."""

    def __init__(self, total: int, emit: Callable):
        self.total, self.emit = total, emit
        self.done = 0
        self.started = time.monotonic()
        self.last = 0.0
        self.lock = threading.Lock()

    def add(self, n: int) -> None:
        with self.lock:
            self.done += n
        self.report()

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last > 0.1:
            self.last = now
            self.emit(Progress("upload", done=self.done, total=self.total,
                               rate=self.done / max(now - self.started, 1e-6)))


FREE_SPACE_QUESTION_S = 20.0  # how long a failed upload waits for the server to say how much room it has
MB = 1024 * 1024


def _no_space(transport: Transport, jobs: list[SendJob], done: int, error: BaseException) -> str | None:
    """After a failed upload: when the server's disk is what stopped it, the partials are removed (they
    can never complete there) and the message says so with the numbers; else None.

    SFTP servers report a full disk as a bare "Failure" (SFTP v3 has no code for it), so the
    server is asked how much room it has, over the same connection when that still works: a disk
    with less room than the bytes not yet sent is full. A dead connection gives no answer in time
    and the usual "resumes" message stands."""
    still_needed = sum(j.size - j.offset for j in jobs) - done
    free = free_space(transport)
    if free is None:
        if getattr(error, "errno", None) != 28:
            return None
        free = 0
    elif free >= still_needed + MB and getattr(error, "errno", None) != 28:
        return None
    removed = True
    for j in jobs:
        try:
            transport.remove_file(j.remote)
        except Exception:  # noqa: BLE001 - said in the message below
            removed = False
    after = free_space(transport) if removed else None
    needed = sum(j.size for j in jobs)
    return (f"no space left on {transport.name}: {(free if after is None else after) / MB:.1f} MB free, "
            f"{needed / MB:.1f} MB needed; " +
            ("the partly uploaded files were removed and " if removed else
             "the partly uploaded files could not all be removed, and ") +
            "the server was not changed. Free some space there (or remove old releases) and deploy again")


def free_space(transport: Transport) -> int | None:
    """The server's free bytes under its root, or None when it does not answer within
    FREE_SPACE_QUESTION_S (asked in a thread: a half-dead connection must not hang the deploy)."""
    box: dict = {}

    def ask():
        try:
            box["free"] = int(transport.agent("hello", {"hashes": []})["disk_free"])
        except Exception:  # noqa: BLE001 - no answer is an answer
            pass

    t = threading.Thread(target=ask, name="berth-free-space", daemon=True)
    t.start()
    t.join(FREE_SPACE_QUESTION_S)
    return box.get("free")



def _prefix_sha256(path, size: int) -> str:
    h = hashlib.sha256()
    left = size
    with open(path, "rb") as f:
        while left > 0:
            chunk = f.read(min(1 << 20, left))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()
