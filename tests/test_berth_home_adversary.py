"""Berth's data folder when it cannot be used or should not be trusted: one line saying which folder,
why and what to do, from the CLI with no traceback; a folder others may write (they could plant a
host key in its known_hosts, or edit the audit log) is refused, and a new one is private."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.errors import BerthError
from app.store import paths

ROOT = Path(__file__).resolve().parent.parent


def berth(env: dict, *args) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8"}
    return subprocess.run([sys.executable, "-m", "app", *args], env={**base, **env}, capture_output=True,
                          text=True, timeout=60)


def test_a_data_folder_that_is_a_file_is_named_with_what_to_do(tmp_path):
    file = tmp_path / "file"
    file.write_text("")
    r = berth({"HOME": str(tmp_path), "XDG_DATA_HOME": str(file)}, "status")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert f"cannot use {file / 'berth'} as its data folder" in r.stderr
    assert "set BERTH_HOME to a folder you can write" in r.stderr


def test_berth_home_that_is_a_file_is_named(tmp_path, monkeypatch):
    file = tmp_path / "file"
    file.write_text("")
    monkeypatch.setenv("BERTH_HOME", str(file))
    with pytest.raises(BerthError, match=f"cannot use {file} as its data folder .*exists and is not a folder"):
        paths.berth_home()


def test_a_home_berth_cannot_write_is_named(tmp_path):
    r = berth({"HOME": "/proc/1"}, "status")  # root cannot make folders there either
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "cannot use /proc/1/.local/share/berth as its data folder" in r.stderr


def test_a_data_folder_others_can_write_is_refused(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(home, 0o777)
    monkeypatch.setenv("BERTH_HOME", str(home))
    with pytest.raises(BerthError, match=f"{home} is writable by other users .*chmod 700 {home}"):
        paths.berth_home()
    os.chmod(home, 0o700)
    assert paths.berth_home() == home


def test_a_data_folder_of_another_user_is_refused(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    os.chown(home, 65534, 65534)  # nobody's (the tests run as root, here and in CI)
    monkeypatch.setenv("BERTH_HOME", str(home))
    with pytest.raises(BerthError, match=f"{home} belongs to another user \\(uid 65534\\)"):
        paths.berth_home()


def test_a_new_data_folder_is_private_whatever_the_umask(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTH_HOME", str(tmp_path / "a" / "home"))
    old = os.umask(0)
    try:
        home = paths.berth_home()
    finally:
        os.umask(old)
    assert home.stat().st_mode & 0o777 == 0o700


def test_the_window_names_an_unusable_data_folder_instead_of_a_traceback(tmp_path):
    """Under LC_ALL=C too, with no four lines of Qt's locale warning before it (app/__main__.py)."""
    file = tmp_path / "file"
    file.write_text("")
    r = berth({"HOME": str(tmp_path), "BERTH_HOME": str(file), "QT_QPA_PLATFORM": "offscreen", "LC_ALL": "C"})
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "locale" not in r.stderr
    assert r.stderr.startswith(f"berth: Berth cannot use {file} as its data folder")


@pytest.mark.parametrize("env, want", [
    ({}, {"LC_CTYPE": "C.UTF-8"}),
    ({"LANG": "C"}, {"LANG": "C", "LC_CTYPE": "C.UTF-8"}),
    ({"LC_ALL": "POSIX", "LANG": "en_US.UTF-8"}, {"LC_ALL": "C.UTF-8", "LANG": "en_US.UTF-8"}),
    ({"LANG": "de_DE.ISO-8859-1"}, {"LANG": "de_DE.ISO-8859-1", "LC_CTYPE": "C.UTF-8"}),
    ({"LANG": "en_GB.utf8"}, {"LANG": "en_GB.utf8"}),
    ({"LC_ALL": "fr_FR.UTF-8"}, {"LC_ALL": "fr_FR.UTF-8"}),
])
def test_a_locale_that_is_not_utf8_is_switched_before_qt_starts(env, want):
    from app.__main__ import utf8_locale

    utf8_locale(env)
    assert env == want
