"""The licences of what the package bundles, gathered at build time from the build venv: every
distribution Berth depends on (its requirements, followed), PyInstaller (its bootloader is the
executable), Python itself, Qt's LGPL (the PySide6 wheels carry no licence file), Berth's icons.
Written to <dest>/ as one folder per distribution plus INDEX.txt (name, version, licence, files),
in sorted order so two builds write the same bytes."""
from __future__ import annotations

import re
import shutil
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LICENSE_NAME = re.compile(r"(^|/)(licen[cs]e|copying|notice|authors)[^/]*$", re.I)
EXTRA = {"pyinstaller"}  # not a requirement of Berth, but its bootloader is what starts the package
QT_LGPL = ("pyside6-essentials", "shiboken6")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str = "berth") -> list[metadata.Distribution]:
    """`root` and everything it requires (extras and markers that do not apply left out), by name."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [root]
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = dist
        for req in dist.requires or ():
            from packaging.requirements import Requirement

            r = Requirement(req)
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(r.name)
    for name in EXTRA:  # itself only: what it requires runs at build time, not in the package
        try:
            seen[name] = metadata.distribution(name)
        except metadata.PackageNotFoundError:  # collected outside a build venv (tests)
            pass
    return [seen[k] for k in sorted(seen)]


def _license_field(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    text = meta.get("License-Expression") or meta.get("License") or ""
    if not text or len(text) > 80:
        classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or () if c.startswith("License")]
        text = ", ".join(classifiers) or (text.splitlines()[0][:80] if text else "see files")
    return text


def collect(dest: Path) -> Path:
    dest = Path(dest)
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    index = ["Licences of the software bundled in this Berth package (name, version, licence: files).", ""]
    for dist in closure():
        name = _norm(dist.metadata["Name"])
        files = sorted({str(f) for f in dist.files or () if ".dist-info/" in str(f) and LICENSE_NAME.search(str(f))})
        folder = dest / name
        folder.mkdir()
        written = []
        for f in files:
            src = Path(dist.locate_file(f))
            if src.is_file():
                target = folder / src.name
                if target.exists():
                    target = folder / f"{src.parent.name}-{src.name}"
                shutil.copyfile(src, target)
                written.append(target.name)
        if name in QT_LGPL:
            for text in ("LGPL-3.0.txt", "GPL-3.0.txt"):
                shutil.copyfile(HERE / "licenses" / text, folder / text)
                written.append(text)
        if not written:
            (folder / "LICENSE-FIELD.txt").write_text(f"{name} {dist.version}: {_license_field(dist)}\n")
            written.append("LICENSE-FIELD.txt")
        index.append(f"{name} {dist.version}: {_license_field(dist)}: {', '.join(sorted(written))}")
    python = Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
    (dest / "python").mkdir()
    if python.is_file():
        shutil.copyfile(python, dest / "python" / "LICENSE.txt")
    else:  # Debian's python3.x keeps it in its doc folder
        python = Path(f"/usr/share/doc/python{sys.version_info[0]}.{sys.version_info[1]}/copyright")
        shutil.copyfile(python, dest / "python" / "LICENSE.txt")
    index.append(f"python {sys.version.split()[0]}: PSF-2.0: LICENSE.txt")
    (dest / "berth-icons").mkdir()
    shutil.copyfile(ROOT / "resources" / "icons" / "LICENSE", dest / "berth-icons" / "LICENSE")
    index.append("berth-icons: MIT: LICENSE")
    (dest / "INDEX.txt").write_text("\n".join(index) + "\n")
    return dest


if __name__ == "__main__":
    print(collect(Path(sys.argv[1])))
