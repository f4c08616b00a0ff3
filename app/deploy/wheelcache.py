"""The desktop's cache of wheels resolved for offline servers: one folder (a wheel's file name
carries its platform, so servers of the same platform share every file), bounded by the setting
`wheel_cache_mb` (least recently used first out), each file's sha256 kept beside it so a deploy
does not hash hundreds of megabytes again (the server hashes what arrives anyway). `berth cache show` / `berth cache clear`."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from app.store import paths

DEFAULT_LIMIT_MB = 4096
HASH_SUFFIX = ".sha256.json"


@dataclass(frozen=True)
class CachedWheel:
    name: str
    path: Path
    size: int
    sha256: str


class WheelCache:
    def __init__(self, folder: Path | None = None, limit_bytes: int = DEFAULT_LIMIT_MB << 20):
        self.folder = Path(folder) if folder is not None else paths.berth_home() / "wheels"
        self.limit_bytes = limit_bytes

    def wheels(self) -> list[Path]:
        try:
            return sorted(p for p in self.folder.iterdir() if p.name.endswith(".whl") and p.is_file())
        except OSError:
            return []

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.wheels())

    def take(self, downloaded: Path) -> CachedWheel:
        """Move a freshly downloaded wheel in (or find the cached file of that name); marks it used."""
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / downloaded.name
        if downloaded.resolve() != target.resolve():
            os.replace(downloaded, target) if not target.exists() else downloaded.unlink()
        os.utime(target)  # the mtime is the last use: eviction goes oldest first
        return CachedWheel(target.name, target, target.stat().st_size, self._sha256(target))

    def evict(self, keep: set[str]) -> list[str]:
        """Remove least recently used wheels (never those in `keep`) until the cache fits its limit."""
        files = sorted(self.wheels(), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        removed = []
        for p in files:
            if total <= self.limit_bytes:
                break
            if p.name in keep:
                continue
            total -= p.stat().st_size
            self._remove(p)
            removed.append(p.name)
        return removed

    def clear(self) -> tuple[int, int]:
        """(files, bytes) removed."""
        files = self.wheels()
        size = sum(p.stat().st_size for p in files)
        shutil.rmtree(self.folder, ignore_errors=True)
        return len(files), size

    def _sha256(self, path: Path) -> str:
        side = path.with_name(path.name + HASH_SUFFIX)
        st = path.stat()
        try:
            kept = json.loads(side.read_text())
            if kept["size"] == st.st_size:  # the mtime is the last use, not a change (the server checks the hash)
                return kept["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        side.write_text(json.dumps({"size": st.st_size, "sha256": h.hexdigest()}))
        return h.hexdigest()

    @staticmethod
    def _remove(path: Path) -> None:
        for p in (path, path.with_name(path.name + HASH_SUFFIX)):
            try:
                p.unlink()
            except OSError:
                pass


def from_settings(settings) -> WheelCache:
    return WheelCache(limit_bytes=limit_mb(settings.get("wheel_cache_mb")) << 20)


def limit_mb(text: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        return DEFAULT_LIMIT_MB
    return value if value > 0 else DEFAULT_LIMIT_MB
