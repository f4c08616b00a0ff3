"""`make package` from a clean clone of this commit, twice: the same file list both times (and in the
.tar.gz, whose members carry fixed times and owners), the agent's files byte-identical to app/agent
(its digest is what servers check), the licences gathered, and `make package-test` (the built
folder's --self-test in an empty environment) passing. Minutes: PyInstaller, and PyPI installs into
the build venv."""
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.package_build, pytest.mark.timeout(2400)]


def files_of(folder: Path) -> dict[str, str]:
    """relative path -> sha256 (or "-> target" for a link)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def make(src: Path, target: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHON"] = shutil.which("python3") or sys.executable
    return subprocess.run(["make", "-s", "-C", str(src), target], env=env, capture_output=True, text=True,
                          timeout=2000)


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory):
    src = tmp_path_factory.mktemp("package") / "checkout"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(src)], check=True, timeout=120)
    builds = []
    for n in (1, 2):
        r = make(src, "package")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        if n == 1:
            shutil.move(src / "dist", src / "dist-1")
            shutil.rmtree(src / "build" / "pyinstaller")
        builds.append(src / ("dist-1" if n == 1 else "dist"))
    return src, builds


def test_two_builds_of_one_commit_have_the_same_file_list(two_builds):
    _src, (first, second) = two_builds
    a, b = files_of(first / "berth"), files_of(second / "berth")
    assert sorted(a) == sorted(b)
    differ = sorted(k for k in a if a[k] != b[k])
    # measured 2026-12-01: none (docs/packaging.md); a PyInstaller or hook release that stamps a time
    # or a path into a file shows up here
    assert differ == [], f"{len(differ)} of {len(a)} files differ in content"
    tars = [sorted(d.glob("berth-*-linux-x86_64.tar.gz")) for d in (first, second)]
    assert len(tars[0]) == len(tars[1]) == 1
    listings = []
    for (tar_path,) in tars:
        with tarfile.open(tar_path) as tar:
            members = tar.getmembers()
        assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
        assert len({m.mtime for m in members}) == 1
        listings.append([m.name for m in members])
    assert listings[0] == listings[1] == sorted(listings[0])
    assert set(listings[0]) >= {"berth/" + k for k in a}
    assert tars[0][0].read_bytes() == tars[1][0].read_bytes(), "same files, same tar: make_tar.py normalises the rest"


def test_the_package_carries_the_agent_byte_for_byte(two_builds):
    src, (_first, second) = two_builds
    packaged = second / "berth" / "_internal" / "app" / "agent"
    assert sorted(p.name for p in packaged.glob("*.py")) == sorted(p.name for p in (src / "app" / "agent").glob("*.py"))
    for path in (src / "app" / "agent").glob("*.py"):
        assert (packaged / path.name).read_bytes() == path.read_bytes(), path.name
    assert not [p.name for p in packaged.iterdir() if p.suffix != ".py"], "only the agent's sources beside them"


def test_the_package_carries_licences_icons_examples_and_desktop_files(two_builds):
    _src, (_first, second) = two_builds
    inside = second / "berth" / "_internal"
    index = (inside / "licenses" / "INDEX.txt").read_text()
    for name in ("pyside6-essentials", "shiboken6", "pyqtgraph", "paramiko", "numpy", "pyinstaller", "python"):
        assert f"\n{name} " in index, name
    assert (inside / "licenses" / "pyside6-essentials" / "LGPL-3.0.txt").is_file()
    assert (inside / "resources" / "icons" / "berth.svg").is_file()
    assert (inside / "resources" / "examples" / "iris" / "berth.toml").is_file()
    assert (inside / "desktop" / "org.berth.Berth.desktop").is_file()


def test_make_package_test_runs_the_self_test_in_an_empty_environment(two_builds):
    src, _builds = two_builds
    r = make(src, "package-test")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "berth --self-test (packaged" in r.stdout and r.stdout.rstrip().endswith("self-test passed")


def test_the_package_names_the_library_its_xcb_plugin_lacks(two_builds, tmp_path):
    """Where Qt's xcb plugin cannot load (this machine lacks libxcb-icccm4 and others), the packaged
    console says which library to install, as from source (its frozen ctypes words errors its own
    way: app/ui/platform_check.py)."""
    from app.ui.platform_check import plugin_problem, xcb_plugin

    expected = plugin_problem(xcb_plugin())
    if expected is None:
        pytest.skip("Qt's xcb plugin loads on this computer: nothing is missing to be named")
    _src, (_first, second) = two_builds
    r = subprocess.run([str(second / "berth" / "berth")], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", "DISPLAY": ":99"})
    assert r.returncode == 1, r.stdout + r.stderr
    library = expected.split(" needs ")[1].split(",")[0]
    assert f"berth: the console cannot open a window: Qt's xcb platform needs {library}, " in r.stderr, r.stderr
    assert "Failed to load" not in r.stderr
