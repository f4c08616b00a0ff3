"""Where a model's experiment lives: `models/<name>/experiment/` holds its settings and state
(experiment.json, written by the agent and by the router as the canary steps), the router's
figures (stats.json, rewritten twice a second), its pid record (router.json) and its log. Files,
so the experiment outlives Berth, the SSH connection and the agent; small enough for
operations.py and queries.py to import on every command."""
import os

from .fsutil import read_json
from .layout import AgentError
from .runnerproc import has_proc, pid_alive

ACTIVE = ("running", "complete")  # complete: a canary that reached 100 %, waiting for stop or promote


def folder(model):
    return os.path.join(model.path, "experiment")


def config_file(model):
    return os.path.join(folder(model), "experiment.json")


def stats_file(model):
    return os.path.join(folder(model), "stats.json")


def router_file(model):
    return os.path.join(folder(model), "router.json")


def router_log(model):
    return os.path.join(model.logs, "router.log")


def config(model):
    data = read_json(config_file(model))
    return data if isinstance(data, dict) else None


def active(model):
    """The experiment that runs on this model (its settings), or None."""
    data = config(model)
    return data if data and data.get("state") in ACTIVE else None


def router_alive(model):
    rec = read_json(router_file(model)) or {}
    pid = rec.get("pid")
    if not pid_alive(pid):
        return False
    if not has_proc():
        return True
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return os.fsencode(folder(model)) in f.read().split(b"\0")
    except OSError:
        return False


def label(data):
    """'canary 25%', 'ab 10%', 'shadow' (for `berth status`)."""
    if not data:
        return None
    if data["mode"] == "shadow":
        return "shadow"
    return "%s %g%%" % (data["mode"], round(float(data.get("weight", 0)) * 100, 2))


def versions(model):
    """The versions an active experiment runs (both kept alive by the stray-runner sweep)."""
    data = active(model)
    return {data["a"], data["b"]} if data else set()


def refuse_during(model, action):
    """Deploy, rollback, start, stop and set-port leave a model with an experiment alone."""
    data = active(model)
    if data:
        raise AgentError("%s has a %s experiment running (%s against %s): stop it first with `berth experiment stop "
                         "%s --server SERVER` (or --promote), then %s" % (model.name, data["mode"], data["b"],
                                                                          data["a"], model.name, action),
                         "experiment_running")
