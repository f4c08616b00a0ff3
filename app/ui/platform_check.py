"""Before the window: can Qt's xcb platform plugin load here? Since Qt 6.5 it needs libxcb-cursor0
(and libxcb-icccm4, -keysyms1, ...), which the package cannot bring (X client libraries belong to the
desktop) and many desktops lack. Without them Qt aborts the process (exit 134, a core file) advising
to reinstall the application, which does not help; this names the library to install instead."""
from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

# what provides each library (Debian and Ubuntu's package names; Fedora's differ and follow in the message)
DEBIAN = {"libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
          "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-image.so.0": "libxcb-image0",
          "libxcb-render-util.so.0": "libxcb-render-util0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0"}


def xcb_plugin() -> Path:
    import PySide6

    return Path(PySide6.__file__).resolve().parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"


def uses_xcb(environ=None) -> bool:
    env = os.environ if environ is None else environ
    chosen = env.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or (chosen and not chosen.startswith("xcb")):
        return False
    return chosen.startswith("xcb") or not env.get("WAYLAND_DISPLAY")


def plugin_problem(plugin: Path) -> str | None:
    """None when `plugin` loads; else one line naming the library it lacks and what to install."""
    if not plugin.exists():
        return None  # not a build with the plugin (another platform): Qt says what it has
    try:
        ctypes.CDLL(str(plugin))
    except OSError as e:
        platform = plugin.stem.removeprefix("libq")
        library, said = _missing_library(e, str(plugin))
        if library is None:
            return (f"the console cannot open a window: Qt's {platform} platform does not load here ({said}); "
                    "the command line works without it (`berth --help`)")
        package = DEBIAN.get(library)
        how = (f"install {package} (apt install {package}; other systems: the package holding {library})"
               if package else f"install the package holding {library}")
        return (f"the console cannot open a window: Qt's {platform} platform needs {library}, which this "
                f"computer lacks: {how}; the command line works without it (`berth --help`)")
    return None


def _missing_library(error: OSError, plugin: str) -> tuple[str | None, str]:
    """(the library dlopen named, or None; dlopen's own words). dlopen says "libxcb-icccm.so.4: cannot
    open shared object file: ...", but a frozen build's ctypes (PyInstaller's) raises its own "Failed
    to load dynlib/dll ..." from that error, so the chain is read down to dlopen's. The plugin's own
    path first ("...: invalid ELF header", "undefined symbol") names no library to install."""
    seen, said = error, str(error)
    while seen is not None:
        said = str(seen)
        head = said.split(":")[0].strip()
        if ".so" in head and " " not in head:
            return (None if head == plugin else head), said
        seen = seen.__cause__ or seen.__context__
    return None, said
