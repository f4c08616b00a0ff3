"""What the package leaves out of PySide6 (packaging/berth.spec): parts Berth never uses, with the
libraries only they brought. Measured 2026-12-02 (docs/packaging.md, "What is inside")."""
from __future__ import annotations

from pathlib import PurePosixPath

QT = "PySide6/Qt/"
# Qt's own translations: Berth's window is English, and a half-translated dialog (only Qt's buttons) is worse.
DROP_FOLDERS = (QT + "translations/",
                # the input and device plugins of framebuffer / EGL platforms, which a desktop never starts
                QT + "plugins/egldeviceintegrations/", QT + "plugins/generic/")
# A desktop runs xcb or wayland (offscreen: --self-test); the GTK 3 theme plugin brings GTK, cairo,
# pango and 25 more libraries (~16 MiB) for native file dialogs and colours Berth does not ask for
# (its theme is Fusion with its own palette, app/ui/theme.py).
DROP_FILES = tuple(QT + "plugins/" + name for name in (
    "platforms/libqeglfs.so", "platforms/libqlinuxfb.so", "platforms/libqminimal.so",
    "platforms/libqminimalegl.so", "platforms/libqvnc.so", "platforms/libqvkkhrdisplay.so",
    "platformthemes/libqgtk3.so"))


def dropped(dest: str) -> bool:
    dest = dest.replace("\\", "/")
    return dest in DROP_FILES or dest.startswith(DROP_FOLDERS)


def trim(toc: list, imports) -> list:
    """`toc` (PyInstaller's (dest, source, kind) entries) without the dropped files, nor the libraries
    that only they needed. `imports(source)` gives a binary's (soname, path) needs (bindepend.get_imports)."""
    kept = [e for e in toc if not dropped(e[0])]
    gone = [e for e in toc if dropped(e[0]) and e[2] in ("BINARY", "EXTENSION")]
    libs = {PurePosixPath(e[0]).name: e for e in kept if e[2] == "BINARY"}
    needs = {}

    def needed(entry) -> set[str]:
        if entry[0] not in needs:
            try:
                needs[entry[0]] = {name for name, _ in imports(entry[1])}
            except Exception:  # noqa: BLE001 not an ELF file (a script): it needs nothing
                needs[entry[0]] = set()
        return needs[entry[0]]

    def closure(roots) -> set[str]:
        seen: set[str] = set()
        todo = list(roots)
        while todo:
            for name in needed(todo.pop()):
                if name in libs and name not in seen:
                    seen.add(name)
                    todo.append(libs[name])
        return seen

    candidates = closure(gone)  # what the dropped plugins pulled in
    roots = [e for e in kept if e[2] != "BINARY" or PurePosixPath(e[0]).name not in candidates]
    keep = closure([e for e in roots if e[2] in ("BINARY", "EXTENSION")])
    return [e for e in kept if e[2] != "BINARY" or PurePosixPath(e[0]).name not in candidates - keep]
