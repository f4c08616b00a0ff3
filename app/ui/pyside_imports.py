"""PySide6's import hook without its memory cost.

PySide6 (since 6.4, PYSIDE-2029) looks at every module imported after it to learn whether the module
uses PySide6 (only those may switch `__feature__`s on): it asks `inspect.getsource(module)`, which
leaves each module's source lines in `linecache` for good. In the console that was every module it
imports, ~180,000 lines, about 20 MB of RSS (issue 23: the console's 200 MB goal). The same question is
answered here from the file's bytes, which are dropped at once; a module without a `.py` file (a
frozen build's) still gets PySide6's own answer. Nothing is changed when the hook is not there.
"""
from __future__ import annotations

import linecache
import sys


def keep_imports_lean() -> bool:
    """Replace the hook's source check (once); True when it was replaced."""
    import PySide6.QtCore  # noqa: F401  (the hook module exists once a Qt module was imported)

    feature = sys.modules.get("shibokensupport.feature")
    upstream = getattr(feature, "_mod_uses_pyside", None)
    if upstream is None or getattr(upstream, "berth_lean", False):
        return False

    def uses_pyside(module) -> bool:
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.endswith(".py"):
            try:
                with open(path, "rb") as f:
                    return b"PySide6" in f.read()
            except OSError:
                pass
        return upstream(module)

    uses_pyside.berth_lean = True
    feature._mod_uses_pyside = uses_pyside
    linecache.clearcache()  # the modules looked at before this (their lines are read again if a traceback needs them)
    return True
