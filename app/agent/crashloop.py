"""What the runner watchdog (watchdog.py) remembers about a model's crashes, in
`models/<name>/run/watchdog.json`: the crashes of the last WINDOW_S, whether a restart is still owed
(a failed restart removes the runner's record, so the record alone cannot say "keep trying"), when
the next try may start (backoff 0 s, 1 s, 2 s, 4 s ... MAX_DELAY_S), and whether it gave up after
MAX_CRASHES crashes in WINDOW_S. An operator's successful change (start, stop, deploy, rollback,
set-port) starts the history afresh (operations.audited)."""
import os
import signal
import time

from .fsutil import read_json, write_json_atomic, _unlink
from .journal import utc_now
from .layout import AgentError

MAX_CRASHES = 5  # in WINDOW_S: then the release is broken, not unlucky, and restarting it wastes a core
WINDOW_S = 600
MAX_DELAY_S = 30


def state_file(model):
    return os.path.join(model.run, "watchdog.json")


def read(model):
    data = read_json(state_file(model))
    return data if isinstance(data, dict) else {}


def reset(model):
    _unlink(state_file(model))


def owed(state, version):
    """A restart of `version` is still owed (a try failed and the next one has not come yet)."""
    return bool(state.get("owed") and state.get("version") == version and not state.get("gave_up_at"))


def note_crash(model, version, pid, status, now=None, text=None):
    """Record one crash (a runner found dead with its `status`, or a restart that failed, said by
    `text`); returns the new state:
    its `next_try` (time.time()) after the backoff, or `gave_up_at` at the MAX_CRASHES-th."""
    now = time.time() if now is None else now
    state = read(model)
    if state.get("version") != version:
        state = {}
    crashes = [c for c in state.get("crashes") or [] if now - c.get("t", 0) < WINDOW_S]
    crashes.append({"t": now, "at": utc_now(), "pid": pid, "status": text or describe_status(status)})
    state = {"version": version, "crashes": crashes, "owed": True, "restarts": state.get("restarts", 0)}
    if len(crashes) >= MAX_CRASHES:
        state.update(owed=False, gave_up_at=utc_now(),
                     reason="%d crashes in %d minutes (last: %s)" % (len(crashes), WINDOW_S // 60, crashes[-1]["status"]))
    else:
        state["next_try"] = now + delay(len(crashes))
    write_json_atomic(state_file(model), state)
    return state


def restarted(model, state):
    """The restart succeeded: nothing owed, the crash history stays for the window."""
    state = dict(state, owed=False, restarts=state.get("restarts", 0) + 1, restarted_at=utc_now())
    state.pop("next_try", None)
    write_json_atomic(state_file(model), state)
    return state


def delay(crashes):
    """Seconds before the try after the `crashes`-th crash: the first comes back at once."""
    return 0 if crashes <= 1 else min(MAX_DELAY_S, 2 ** (crashes - 2))


def describe_status(status):
    """A returncode as Popen gives it (negative: the signal), or None when it is not known."""
    if status is None:
        return "exit status unknown (not started by this watchdog)"
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = "signal %d" % -status
        return "killed by signal %d (%s)" % (-status, name)
    return "exited with status %d" % status


def summary(model, version):
    """For `berth status`: None, or {"restarts", "last_crash", "gave_up_at", "detail"}."""
    state = read(model)
    if not state or state.get("version") != version:
        return None
    last = (state.get("crashes") or [{}])[-1]
    out = {"restarts": state.get("restarts", 0), "last_crash": last.get("at"), "last_status": last.get("status"),
           "gave_up_at": state.get("gave_up_at")}
    if state.get("gave_up_at"):
        out["detail"] = "crash loop: gave up at %s after %s; fix the release and `berth start` it (or deploy " \
                        "another)" % (state["gave_up_at"], state.get("reason"))
    elif state.get("owed"):
        out["detail"] = "crashed (%s): the watchdog restarts it" % last.get("status")
    return out


def supervised(root):
    """Has any model of this root a runner the operator started (alive, or owed a restart)? Then the
    scheduler process stays up for its watchdog."""
    for name in root.model_names():
        model = root.model(name)
        version = model.current_version()
        if version is None:
            continue
        try:
            if os.path.exists(model.runner_file(version)) or owed(read(model), version):
                return True
        except AgentError:
            continue
    return False
