"""packaging/linux/: the .desktop entry and AppStream metainfo pass the freedesktop validators
(desktop-file-validate, appstreamcli: Debian's desktop-file-utils and appstream), the icon is there
in every hicolor size, and `make install-desktop` / `make uninstall-desktop` put exactly these files
under $XDG_DATA_HOME and take them away again."""
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINUX = ROOT / "packaging" / "linux"
APP_ID = "org.berth.Berth"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)

sys.path.insert(0, str(LINUX))
import desktop  # noqa: E402 (packaging/linux/desktop.py)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is missing: apt-get install desktop-file-utils appstream (.ci/run installs them)")
    return path


def validate_desktop(path: Path) -> str:
    """desktop-file-validate's complaints (errors and warnings; its hints are advice), '' when clean."""
    r = subprocess.run([need("desktop-file-validate"), str(path)], capture_output=True, text=True, timeout=60)
    bad = [line for line in r.stdout.splitlines() if "error:" in line or "warning:" in line]
    return "\n".join(bad) if (r.returncode or bad) else ""


def validate_metainfo(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([need("appstreamcli"), "validate", "--no-net", str(path)], capture_output=True,
                          text=True, timeout=60)


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


def make(*targets: str, data: Path, **environ) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_DATA_HOME=str(data), PYTHON=sys.executable, **{k: str(v) for k, v in environ.items()})
    argv = ["make", "-s", "-C", str(ROOT), *targets]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def test_the_desktop_entry_passes_desktop_file_validate():
    assert validate_desktop(LINUX / f"{APP_ID}.desktop") == ""


def test_desktop_file_validate_catches_a_broken_entry(tmp_path):
    broken = tmp_path / f"{APP_ID}.desktop"
    text = (LINUX / f"{APP_ID}.desktop").read_text()
    broken.write_text(text.replace("Name=Berth\n", "").replace("Type=Application", "Type=Program"))
    assert validate_desktop(broken) != ""


def test_the_metainfo_passes_appstreamcli_validate():
    r = validate_metainfo(LINUX / f"{APP_ID}.metainfo.xml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_appstreamcli_catches_a_broken_metainfo(tmp_path):
    broken = tmp_path / f"{APP_ID}.metainfo.xml"
    text = (LINUX / f"{APP_ID}.metainfo.xml").read_text()
    broken.write_text(text.replace(f"<id>{APP_ID}</id>", "<id>not an id</id>").replace("<summary>", "<sumary>"))
    assert validate_metainfo(broken).returncode != 0


def test_the_metainfo_names_the_desktop_entry_and_pyproject_version():
    import tomllib

    text = (LINUX / f"{APP_ID}.metainfo.xml").read_text()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f'<launchable type="desktop-id">{APP_ID}.desktop</launchable>' in text
    assert f'<release version="{version}"' in text, "a new version needs its <release> in the metainfo"


def test_the_icon_is_there_in_every_hicolor_size():
    icons = LINUX / "icons" / "hicolor"
    for size in SIZES:
        assert png_size(icons / f"{size}x{size}" / "apps" / f"{APP_ID}.png") == (size, size)
    assert (icons / "scalable" / "apps" / f"{APP_ID}.svg").read_bytes() == \
        (ROOT / "resources" / "icons" / "berth.svg").read_bytes(), "run packaging/linux/make_icons.py"


def test_make_install_desktop_then_uninstall_desktop(tmp_path):
    data = tmp_path / "data home"
    program = tmp_path / "bin dir" / "ber$th"  # Exec quoting: a space and a $ in the path
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    r = make("install-desktop", data=data, BERTH_EXEC=program)
    assert r.returncode == 0, r.stdout + r.stderr
    entry = data / "applications" / f"{APP_ID}.desktop"
    assert validate_desktop(entry) == ""
    lines = entry.read_text().splitlines()
    assert f'Exec="{tmp_path}/bin dir/ber\\\\$th"' in lines
    assert f"TryExec={program}" in lines
    assert validate_metainfo(data / "metainfo" / f"{APP_ID}.metainfo.xml").returncode == 0
    installed = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
    assert installed == sorted(t.relative_to(data).as_posix() for _s, t in desktop.planned(data))
    assert len(installed) == 2 + len(SIZES) + 1

    r = make("uninstall-desktop", data=data)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [p for p in data.rglob("*") if p.is_file()] == []
    assert "nothing of Berth's" in make("uninstall-desktop", data=data).stdout


@pytest.mark.parametrize("program", ["/no/such/berth", "not-executable"])
def test_install_desktop_refuses_a_program_it_cannot_start(tmp_path, program):
    if program == "not-executable":
        program = tmp_path / program
        program.write_text("#!/bin/sh\n")
    r = make("install-desktop", data=tmp_path / "data", BERTH_EXEC=program)
    assert r.returncode != 0 and "is not an executable file" in r.stderr, r.stderr
    assert not (tmp_path / "data").exists()


def test_a_relative_xdg_data_home_is_ignored():
    assert desktop.data_home({"XDG_DATA_HOME": "relative/share"}) == Path.home() / ".local" / "share"
    assert desktop.data_home({"XDG_DATA_HOME": "/srv/share"}) == Path("/srv/share")


def test_a_program_path_with_a_newline_is_refused():
    with pytest.raises(SystemExit, match="one line"):
        desktop.quote_exec("/opt/ber\nth")


def test_install_desktop_into_a_data_home_that_is_a_file_says_so(tmp_path):
    data = tmp_path / "share"
    data.write_text("")
    r = make("install-desktop", data=data, BERTH_EXEC=shutil.which("true"))
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert f"desktop: cannot write into {data}" in r.stderr and "XDG_DATA_HOME" in r.stderr
