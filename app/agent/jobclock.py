"""The time jobs and the scheduler see. Tests inject a clock: BERTH_FAKE_NOW_FILE names a file
holding an ISO-8601 time, read on every call. Production never sets it: SSH does not pass BERTH_*
variables (sshd's AcceptEnv), the runner's environment drops them (runnerenv.py), and the file has to
be written by someone who can already run code as the job's user."""
import os
import time
from datetime import datetime, timezone

CLOCK_ENV = "BERTH_FAKE_NOW_FILE"


def now():
    path = os.environ.get(CLOCK_ENV)
    if path:
        try:
            with open(path) as f:
                return parse(f.read().strip())
        except (OSError, ValueError):
            pass  # a clock file being rewritten: the real time for this one reading
    return datetime.now(timezone.utc)


def fake_clock_file():
    return os.environ.get(CLOCK_ENV) or None


def iso(t):
    return t.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z") if t else None


def parse(text):
    if not text:
        return None
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def sleep(seconds):
    """time.sleep, except on an injected clock: there time moves only when the file changes, so the
    wait ends as soon as it does (a test or bench steps hours without waiting real seconds)."""
    path = fake_clock_file()
    if not path:
        time.sleep(seconds)
        return
    before = _stamp(path)
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(0.02, left))
        if _stamp(path) != before:
            return


def _stamp(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size
