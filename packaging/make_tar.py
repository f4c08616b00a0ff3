"""The .tar.gz of the built folder, the same bytes for the same files: members sorted, mtimes set to
SOURCE_DATE_EPOCH (the commit's time), owner root:root with no names, modes normalised to 0755 /
0644, and a gzip header with no name and no time. `python packaging/make_tar.py dist/berth out.tar.gz`."""
from __future__ import annotations

import gzip
import os
import sys
import tarfile
from pathlib import Path


def _ordered(folder: Path) -> list[Path]:
    """The folder and everything under it, symlinks kept as links (os.walk does not follow them), by path."""
    found = [folder]
    for dirpath, dirnames, filenames in os.walk(folder):
        found += [Path(dirpath) / name for name in dirnames + filenames]
    return sorted(found, key=lambda p: p.relative_to(folder.parent).as_posix())


def make_tar(folder: Path, out: Path, epoch: int) -> Path:
    folder, out = Path(folder), Path(out)

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime = epoch
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        if info.isdir() or info.mode & 0o111:
            info.mode = 0o755
        elif not info.issym():
            info.mode = 0o644
        return info

    tmp = out.with_name(out.name + ".part")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _ordered(folder):
            tar.add(path, arcname=path.relative_to(folder.parent).as_posix(), recursive=False, filter=normalise)
    tmp.replace(out)
    return out


if __name__ == "__main__":
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    print(make_tar(Path(sys.argv[1]), Path(sys.argv[2]), epoch))
