"""The time the monitoring threads read and wait on, in one object, so that a test can drive the
reconnect backoff and the pacing of samples with a fake one instead of sleeping through them."""
from __future__ import annotations

import threading
import time


class Clock:
    """Real time: monotonic for schedules, wall time for timestamps, and waits that an Event cuts
    short (stop() and a new interval must not wait out a 30 s backoff)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait up to `seconds` or until `event` is set; True if it was set."""
        return event.wait(seconds)


REAL_CLOCK = Clock()
