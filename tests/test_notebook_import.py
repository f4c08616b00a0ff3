"""`import berth` in a data scientist's environment: it loads neither Qt nor paramiko nor any model
library, and saving a bundle needs none of the desktop's packages (docs/decisions.md: the notebook
side installs as `pip install --no-deps berth` plus packaging and cloudpickle)."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DESKTOP = ("PySide6", "shiboken6", "pyqtgraph", "paramiko", "psutil", "sqlite_utils", "keyring", "platformdirs")
MODEL_LIBRARIES = ("sklearn", "torch", "numpy", "pandas", "joblib", "cloudpickle", "scipy")


def run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_import_berth_loads_no_qt_no_paramiko_and_no_model_library(tmp_path):
    r = run("import sys, json, berth; print(json.dumps(sorted(sys.modules)))", tmp_path)
    assert r.returncode == 0, r.stderr
    loaded = {name.split(".")[0] for name in json.loads(r.stdout)}
    assert not loaded & set(DESKTOP + MODEL_LIBRARIES), loaded & set(DESKTOP + MODEL_LIBRARIES)
    assert callable(getattr(__import__("berth"), "save_bundle"))


BLOCKER = """
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in %r:
            raise ModuleNotFoundError("No module named %%r (not installed)" %% name)
sys.meta_path.insert(0, Absent())
""" % (DESKTOP,)


def test_a_bundle_is_saved_and_checked_without_any_desktop_package(tmp_path):
    code = BLOCKER + """
import berth
from app.bundle import check_folder
def total(rows):
    return [sum(r) for r in rows]
saved = berth.save_bundle(total, "b", name="total", version="1.0.0", example=[[1, 2]])
print(check_folder(saved.path).ok, saved.requirements)
"""
    r = run(code, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(" ", 1)[0] == "True", r.stdout
    # the blocker works: the desktop's packages really are not importable in that process
    r = run(BLOCKER + "import paramiko", tmp_path)
    assert r.returncode != 0 and "not installed" in r.stderr


def test_the_package_list_in_pyproject_is_every_app_package_and_the_berth_name():
    """pyproject lists the packages by hand (a mapped name cannot come from `find`): a new folder under
    app/ that is not listed would be missing from every install."""
    import tomllib

    from setuptools import find_packages

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert sorted(config["packages"]) == sorted(find_packages(str(REPO), include=["app*"], exclude=["app.notebook.import_name"]) + ["berth"])
    assert config["package-dir"] == {"berth": "app/notebook/import_name"}
    assert not (REPO / "berth").exists()  # the top level stays: pyproject, README, app/, resources/, tests/ ...
