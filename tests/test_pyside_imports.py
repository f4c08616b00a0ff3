"""PySide6's import hook keeps no module's source lines (app/ui/pyside_imports.py): ~20 MB of the
console's RSS), and still tells the modules that use PySide6 from those that do not."""
import linecache
import sys

import pytest


@pytest.fixture
def probe_modules(tmp_path, monkeypatch):
    """Two fresh modules on sys.path (names unique to this run): one that uses PySide6, one that does not."""
    tag = tmp_path.name.replace("-", "_")
    names = {"qt": f"berth_probe_qt_{tag}", "plain": f"berth_probe_plain_{tag}"}
    (tmp_path / f"{names['qt']}.py").write_text("from PySide6.QtCore import QObject\nUSES = QObject\n")
    (tmp_path / f"{names['plain']}.py").write_text("import json\nUSES = json\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield names
    for name in names.values():
        sys.modules.pop(name, None)


def test_a_module_imported_after_the_console_leaves_no_source_lines_and_keeps_pysides_answer(probe_modules, tmp_path):
    import app.ui  # noqa: F401  (replaces the hook's check, once)
    from app.ui.pyside_imports import keep_imports_lean

    feature = sys.modules["shibokensupport.feature"]
    assert getattr(feature._mod_uses_pyside, "berth_lean", False)
    assert keep_imports_lean() is False  # once only: a second call changes nothing
    for name in probe_modules.values():
        __import__(name)  # an import statement's way: PySide6 hooks __import__, not importlib.import_module
    assert feature.pyside_feature_dict[probe_modules["qt"]] == 0  # uses PySide6: may switch features on
    assert feature.pyside_feature_dict[probe_modules["plain"]] == -1  # ignored by the feature machinery
    kept = [f for f in linecache.cache if str(tmp_path) in f]
    assert kept == [], f"source lines kept for {kept}"
