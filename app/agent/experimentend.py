"""How an experiment ends, whoever ends it (`experiment stop`, with or without --promote, or the
router itself when a canary breaks its limits): the stable port goes back to the winner's runner
(`serve` over its control socket: it accepts beside the router first, so no connection waits),
the router stops, the loser's runner stops, B becomes current when it won, and the journal says
so. Called with the server lock held."""
import os
import signal
import socket
import time

from . import endpoint, experimentfiles as xf, journal, supervise
from .fsutil import read_json, symlink_atomic, write_json_atomic, _unlink
from .layout import AgentError, Root
from .lock import ServerLock

ROUTER_STOP_S = 10.0
LOCK_WAIT_S = 30.0


def finish(root, model, data, winner, action, actor, detail, event_id=None, router_self=False):
    win, lose = data[winner], data["b" if winner == "a" else "a"]
    rec = supervise.record(model, win)
    if not supervise.alive(rec):
        raise AgentError("%s %s's runner is not running, so it cannot take the stable port back; start the experiment's "
                         "other ending instead (%s)" % (model.name, win, "without --promote" if winner == "b"
                                                        else "--promote"), "not_running")
    endpoint.serve(rec)
    if not router_self:
        stop_router(model)
    if winner == "b":
        symlink_atomic(os.path.join("releases", win), model.current)
    supervise.stop(model, lose)
    state = {"experiment.promoted": "promoted", "experiment.auto_rollback": "rolled_back"}.get(action, "stopped")
    data = dict(data, state=state, ended=journal.utc_now(), winner=win, detail=detail, 
                weight=0.0 if state == "rolled_back" else data["weight"])
    write_json_atomic(xf.config_file(model), data)
    journal.append(root, action, "ok", actor, event_id, model=model.name, version=win, old=data["a"], new=win,
                   detail=detail)
    return data


def stop_router(model, timeout=ROUTER_STOP_S):
    """SIGTERM the router (it stops accepting, finishes its requests, exits), SIGKILL at `timeout`."""
    rec = read_json(xf.router_file(model)) or {}
    if xf.router_alive(model):
        pid = int(rec["pid"])
        os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + timeout
        while xf.router_alive(model) and time.monotonic() < end:
            supervise._reap(pid)
            time.sleep(0.05)
        if xf.router_alive(model):
            os.kill(pid, signal.SIGKILL)
            while xf.router_alive(model) and time.monotonic() < end + 5:
                supervise._reap(pid)
                time.sleep(0.05)
    _unlink(xf.router_file(model))
    _unlink(os.path.join(xf.folder(model), "router.ready"))


def auto_rollback(folder, why):
    """The router's own ending when a canary breaks a limit: B to 0 %, A takes the port back, B's
    runner stops, journalled as experiment.auto_rollback (what the `auto_rollback` alert rule reads).
    Returns the ended experiment, None when it was stopped meanwhile, False when the server stayed
    locked or A could not take the port (the router goes on serving A alone and tries again)."""
    model_path = os.path.dirname(os.path.abspath(folder))
    root = Root(os.path.dirname(os.path.dirname(model_path)))
    model = root.model(os.path.basename(model_path))
    actor = {"user": "berth-router", "host": socket.gethostname()}
    end = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            with ServerLock(root.lock, {"who": "berth-router", "what": "experiment rollback %s" % model.name}):
                data = xf.active(model)
                if data is None:
                    return None  # stopped meanwhile
                return finish(root, model, dict(data, weight=0.0), "a", "experiment.auto_rollback", actor,
                              "canary rolled back at %g%%: %s" % (data["weight"] * 100, why), router_self=True)
        except AgentError as e:
            if e.code != "locked" or time.monotonic() > end:
                print("berth-router: could not roll back yet (B gets no requests meanwhile): %s" % e, flush=True)
                return False  # the router keeps A serving through itself and tries again
            time.sleep(0.2)
