"""Guards against a broken Qt binding: PySide6 6.12.0's Signal.emit() returned True without
taking a reference, so every emit from Python lowered True's reference count and the app died
("bool_dealloc: deallocating True or False") after a few thousand mouse moves. requirements.txt
pins a release without it; this test fails if an upgrade brings such a bug back."""
from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    plain = Signal()
    payload = Signal(object, object)


def test_signal_emit_keeps_reference_counts_of_true_false_and_none() -> None:
    emitter = _Emitter()
    received: list[object] = []
    emitter.payload.connect(lambda a, b: received.append(b))
    before = (sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None))
    for i in range(2000):
        emitter.plain.emit()
        emitter.payload.emit(emitter, None if i % 2 else i)
    after = (sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None))
    assert len(received) == 2000
    # Emitting may cache a few references, never drop them.
    assert all(a >= b - 5 for a, b in zip(after, before, strict=True)), (before, after)
