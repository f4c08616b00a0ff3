"""Where the guide, the examples and the licences are, from a source checkout or a packaged app
(PyInstaller puts data beside the code under `sys._MEIPASS`): one answer for every view that shows them."""
import sys
from pathlib import Path

from app.store import paths

_SOURCE = Path(__file__).resolve().parents[3]


def _bases() -> list[Path]:
    frozen = getattr(sys, "_MEIPASS", None)
    return ([Path(frozen)] if frozen else []) + [_SOURCE]


def find(relative: str) -> Path | None:
    """The first existing `relative` path under the packaged app's data, then the source checkout."""
    for base in _bases():
        candidate = base / relative
        if candidate.exists():
            return candidate
    return None


def guide() -> Path | None:
    return find("docs/user-guide.md")


def example(name: str) -> Path | None:
    return find(f"resources/examples/{name}")


def where_things_live() -> list[tuple[str, str]]:
    """(what, path) for the welcome page: what an operator backs up, or removes to start over."""
    home = paths.berth_home()
    return [("Berth's data (servers, audit log, history)", str(home)),
            ("Its database", str(paths.db_path())),
            ("The built-in local server's root", str(paths.local_root())),
            ("Window layout and preferences", str(home / "ui.ini")),
            ("Passwords and keys' passphrases", "the system keyring, never a file")]
