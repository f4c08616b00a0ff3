"""A small tmpfs of a test's own: a real file system that fills up (the full-disk tests)."""
import subprocess
import time
from pathlib import Path


class MountFailed(OSError):
    """This machine cannot mount a tmpfs (not root, or no permission in this container)."""


def mount_tmpfs(path: Path, size: str, options: str = "") -> Path:
    """A tmpfs of `size` at `path` (made here); undo with unmount(path)."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (f",{options}" if options else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "berth-test-tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise MountFailed(r.stderr.strip() or "mount failed (not root?)")
    return path


def unmount(path: Path) -> None:
    """Unmount, lazily when busy: a runner just stopped (or killed with its namespace) may still be exiting."""
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        time.sleep(0.5)
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
