"""packaging/trim.py: what the spec leaves out of PySide6, and the libraries that only it needed (the
rest stay, even when a dropped plugin needed them too). Run on PyInstaller-shaped entries; the
package's own --self-test after `make package` shows nothing needed went (docs/packaging.md)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packaging"))
import trim  # noqa: E402

GTK = "PySide6/Qt/plugins/platformthemes/libqgtk3.so"
XCB = "PySide6/Qt/plugins/platforms/libqxcb.so"
NEEDS = {GTK: {"libgtk-3.so.0", "libglib-2.0.so.0"}, "libgtk-3.so.0": {"libcairo.so.2", "libglib-2.0.so.0"},
         XCB: {"libglib-2.0.so.0", "libX11.so.6"}, "PySide6/QtGui.abi3.so": {"libfreetype.so.6"}}
TOC = [(GTK, "/src/gtk", "BINARY"), (XCB, "/src/xcb", "BINARY"), ("PySide6/QtGui.abi3.so", "/src/gui", "EXTENSION"),
       ("libgtk-3.so.0", "/src/libgtk", "BINARY"), ("libcairo.so.2", "/src/cairo", "BINARY"),
       ("libglib-2.0.so.0", "/src/glib", "BINARY"), ("libX11.so.6", "/src/x11", "BINARY"),
       ("libfreetype.so.6", "/src/ft", "BINARY"), ("libsqlite3.so.0", "/src/sqlite", "BINARY"),
       ("PySide6/Qt/translations/qtbase_de.qm", "/src/de.qm", "DATA")]
SOURCE = {src: dest for dest, src, _ in TOC}


def imports(source):
    return [(name, "/lib/" + name) for name in sorted(NEEDS.get(SOURCE[source], ()))]


def test_the_gtk_theme_goes_with_what_only_it_needed():
    kept = [dest for dest, _, _ in trim.trim(TOC, imports)]
    assert kept == [XCB, "PySide6/QtGui.abi3.so", "libglib-2.0.so.0", "libX11.so.6", "libfreetype.so.6",
                    "libsqlite3.so.0"]  # glib: xcb needs it too; sqlite: loaded by no plugin, so never a candidate


def test_what_is_dropped_and_what_stays():
    assert trim.dropped("PySide6/Qt/translations/qt_fr.qm") and trim.dropped(GTK)
    assert trim.dropped("PySide6/Qt/plugins/platforms/libqvnc.so")
    for kept in (XCB, "PySide6/Qt/plugins/platforms/libqwayland.so", "PySide6/Qt/plugins/platforms/libqoffscreen.so",
                 "PySide6/Qt/plugins/imageformats/libqsvg.so"):
        assert not trim.dropped(kept), kept
