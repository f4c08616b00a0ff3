"""The Qt binding itself: a release that corrupts reference counts aborts Python at exit
(PySide6 6.12.0 lost a reference to True per Signal.emit(); on 3.11, True is not immortal)."""
import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    plain = Signal()
    text = Signal(str)
    forwarded = Signal()


def _counts():
    return sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)


def _drift(action, times=500):
    before = _counts()
    for _ in range(times):
        action()
    return [after - was for after, was in zip(_counts(), before)]


def test_emit_keeps_reference_counts(qapp):
    e = _Emitter()
    received = []
    e.text.connect(received.append)
    drift = _drift(lambda: (e.plain.emit(), e.text.emit("x")))
    received.clear()
    assert all(abs(d) < 50 for d in drift), f"None/True/False reference drift {drift} over 500 emits"


def test_signal_to_signal_keeps_reference_counts(qapp):
    e = _Emitter()
    e.plain.connect(e.forwarded)
    assert all(abs(d) < 50 for d in _drift(e.plain.emit))
