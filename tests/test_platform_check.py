"""The console names the library Qt's xcb plugin lacks instead of Qt's abort (exit 134, "reinstalling
the application may fix this"): app/ui/platform_check.py, on real plugin files."""
import pytest

from app.ui.platform_check import plugin_problem, uses_xcb, xcb_plugin

QT_XCB = b"libQt6XcbQpa.so.6"


def test_a_plugin_that_loads_is_no_problem():
    offscreen = xcb_plugin().with_name("libqoffscreen.so")
    assert plugin_problem(offscreen) is None


def test_a_plugin_missing_a_library_names_it_and_what_to_install(tmp_path):
    plugin = xcb_plugin().read_bytes()
    assert QT_XCB in plugin
    broken = tmp_path / "libqxcb.so"
    broken.write_bytes(plugin.replace(QT_XCB, b"libQt6XcbQpX.so.6"))
    problem = plugin_problem(broken)
    assert problem.startswith("the console cannot open a window: Qt's xcb platform needs libQt6XcbQpX.so.6")
    assert "`berth --help`" in problem


def test_the_debian_package_is_named_for_a_known_library(tmp_path):
    plugin = xcb_plugin().read_bytes()
    broken = tmp_path / "libqxcb.so"
    broken.write_bytes(plugin.replace(QT_XCB, b"libxcb-icccm.so.4"))  # the same length: the ELF stays sound
    problem = plugin_problem(broken)
    assert "needs libxcb-icccm.so.4" in problem and "apt install libxcb-icccm4" in problem, problem


@pytest.mark.parametrize("env, xcb", [({"DISPLAY": ":0"}, True), ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "w"}, False),
                                      ({"QT_QPA_PLATFORM": "offscreen"}, False), ({"QT_QPA_PLATFORM": "xcb"}, True)])
def test_only_an_xcb_start_is_checked(env, xcb):
    assert uses_xcb(env) is xcb


def test_a_frozen_builds_own_error_is_read_down_to_dlopens(tmp_path, monkeypatch):
    """PyInstaller's ctypes raises "Failed to load dynlib/dll '…'. Most likely this dynlib/dll was not
    found when the application was frozen." from dlopen's error (its loader/pyimod03_ctypes.py); the
    package once printed that sentence as the library to install."""
    import ctypes

    plugin = xcb_plugin().read_bytes()
    broken = tmp_path / "libqxcb.so"
    broken.write_bytes(plugin.replace(QT_XCB, b"libxcb-icccm.so.4"))
    real = ctypes.CDLL

    class FrozenCDLL(real):  # what PyInstaller's PyInstallerCDLL does, in the frozen app's ctypes
        def __init__(self, name, *args, **kwargs):
            try:
                super().__init__(name, *args, **kwargs)
            except Exception as base_error:
                raise OSError(f"Failed to load dynlib/dll {name!r}. Most likely this dynlib/dll was not found "
                              "when the application was frozen.") from base_error

    monkeypatch.setattr(ctypes, "CDLL", FrozenCDLL)
    problem = plugin_problem(broken)
    assert "needs libxcb-icccm.so.4, which this computer lacks" in problem, problem
    assert "apt install libxcb-icccm4" in problem and "Failed to load" not in problem, problem


def test_an_error_that_names_no_library_is_shown_as_dlopen_said_it(tmp_path):
    not_elf = tmp_path / "libqxcb.so"
    not_elf.write_bytes(b"not a shared object")
    problem = plugin_problem(not_elf)
    assert problem.startswith("the console cannot open a window: Qt's xcb platform does not load here ("), problem
    assert "`berth --help`" in problem
