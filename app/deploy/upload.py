"""Send the blobs a server lacks, each to a temporary name first, then renamed: a cut upload
never leaves a file that looks complete (the agent re-hashes every blob before use anyway)."""
import threading
import time
import uuid
from collections.abc import Callable

from app.bundle import FileEntry
from app.remote.transport import Transport

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


def upload_blobs(transport: Transport, blob_dir: str, blobs: list[FileEntry], emit: Callable,
                 cancel: threading.Event | None = None) -> int:
    """Upload `blobs`; emits Progress("upload") with bytes done, total and rate; returns bytes sent."""
    total = sum(b.size for b in blobs)
    sent = 0
    started = time.monotonic()
    last_emit = 0.0

    def report(now_done: int, force: bool = False):
        nonlocal last_emit
        now = time.monotonic()
        if force or now - last_emit > 0.1:
            last_emit = now
            emit(Progress("upload", done=now_done, total=total, rate=now_done / max(now - started, 1e-6)))

    for blob in blobs:
        if cancel is not None and cancel.is_set():
            raise OperationFailed("upload cancelled; nothing on the server changed", code="cancelled")
        tmp = f"{blob_dir}/.tmp-{blob.sha256}-{uuid.uuid4().hex[:8]}"

        def progress(done, _size, base=sent):
            if cancel is not None and cancel.is_set():
                raise OperationFailed("upload cancelled; nothing on the server changed", code="cancelled")
            report(base + done)

        try:
            transport.put(blob.source, tmp, progress)
            transport.rename(tmp, f"{blob_dir}/{blob.sha256}")
        except OperationFailed:
            _forget(transport, tmp)
            raise
        except (OSError, EOFError) as e:
            _forget(transport, tmp)
            raise OperationFailed(f"upload of {blob.path} failed: {e}; the server was not changed", code="upload") from None
        sent += blob.size
        report(sent, force=True)
    return sent


def _forget(transport: Transport, path: str) -> None:
    try:
        transport.remove_file(path)
    except Exception:  # the connection may be gone; a stray temp blob is harmless
        pass
