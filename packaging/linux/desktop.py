"""Install Berth's .desktop entry, AppStream metainfo and icons for the current user, or remove them:
`python3 desktop.py install [--exec PATH]` / `python3 desktop.py uninstall` (make install-desktop).
Into $XDG_DATA_HOME (default ~/.local/share), as the XDG base directory spec says. The entry's Exec
is the absolute path of the berth it starts: --exec or $BERTH_EXEC, else the packaged folder's, when this file is inside one
(berth/_internal/desktop/), else dist/berth/berth of the checkout, else `berth` on PATH.
Standard library only: it runs with the system's python3 too."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
APP_ID = "org.berth.Berth"
DESKTOP = f"{APP_ID}.desktop"
METAINFO = f"{APP_ID}.metainfo.xml"


def data_home(environ=None) -> Path:
    env = os.environ if environ is None else environ
    value = env.get("XDG_DATA_HOME", "")
    # the spec: a relative path is invalid and is ignored
    return Path(value) if value and os.path.isabs(value) else Path.home() / ".local" / "share"


def default_exec() -> str | None:
    if HERE.parent.name == "_internal" and (HERE.parent.parent / "berth").is_file():
        return str(HERE.parent.parent / "berth")  # inside the packaged folder
    built = HERE.parents[1] / "dist" / "berth" / "berth"
    if built.is_file():
        return str(built)
    return shutil.which("berth")


def quote_exec(path: str) -> str:
    """An Exec argument as the Desktop Entry spec quotes it (spaces, quotes, $, `, \\ and %)."""
    if "\n" in path or not os.path.isabs(path):
        raise SystemExit(f"desktop: the program must be an absolute path on one line, not {path!r}")
    escaped = path.replace("%", "%%")
    if any(c in escaped for c in ' \t"\'\\><~|&;$*?#()`'):
        escaped = '"' + "".join("\\" + c if c in '"`$\\' else c for c in escaped) + '"'
        escaped = escaped.replace("\\", "\\\\")  # the value's own escape level (a string value)
    return escaped


def planned(data: Path) -> list[tuple[Path, Path]]:
    """(source, target) of every file installed."""
    files = [(HERE / DESKTOP, data / "applications" / DESKTOP), (HERE / METAINFO, data / "metainfo" / METAINFO)]
    icons = HERE / "icons"
    for src in sorted(icons.rglob(f"{APP_ID}.*")):
        files.append((src, data / "icons" / src.relative_to(icons)))
    return files


def install(program: str, data: Path) -> list[Path]:
    entry = quote_exec(program)
    written = []
    for src, target in planned(data):
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.name == DESKTOP:
            lines = [f"Exec={entry}" if line.startswith("Exec=") else line
                     for line in src.read_text().splitlines()]
            # TryExec is a plain path (no Exec quoting): only the string value's own \\ escape
            lines.insert(lines.index(f"Exec={entry}") + 1, "TryExec=" + program.replace("\\", "\\\\"))
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text("\n".join(lines) + "\n")
            tmp.replace(target)
        else:
            shutil.copyfile(src, target)
        written.append(target)
    return written


def uninstall(data: Path) -> list[Path]:
    removed = []
    for _src, target in planned(data):
        if target.exists():
            target.unlink()
            removed.append(target)
    return removed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="desktop.py", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("install", "uninstall"))
    parser.add_argument("--exec", dest="program", help="the berth executable the menu entry starts")
    args = parser.parse_args(argv)
    data = data_home()
    if args.action == "uninstall":
        removed = uninstall(data)
        print(f"removed {len(removed)} files from {data}" if removed else f"nothing of Berth's in {data}")
        return 0
    program = args.program or os.environ.get("BERTH_EXEC") or default_exec()
    if not program:
        print("desktop: no berth to start: run `make package` first, or give --exec /path/to/berth",
              file=sys.stderr)
        return 1
    program = os.path.abspath(program)
    if not os.access(program, os.X_OK):
        print(f"desktop: {program} is not an executable file: give --exec /path/to/berth", file=sys.stderr)
        return 1
    try:
        written = install(program, data)
    except OSError as e:  # XDG_DATA_HOME a file, a read-only home: one line, not a traceback
        print(f"desktop: cannot write into {data} ({e.strerror or e}): set XDG_DATA_HOME to a folder you can "
              "write", file=sys.stderr)
        return 1
    print(f"installed {len(written)} files into {data} (the menu entry starts {program})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
