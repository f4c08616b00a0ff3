"""`agent.py COMMAND` with a JSON request on stdin. Output is JSON lines on stdout: progress events
(`{"event": "step" | "log", ...}`) and one last line, `{"event": "result", "result": {...}}` or
`{"event": "error", "message": ..., "code": ...}`. Exit 0 on result, 1 on error, 2 on bad usage."""
import errno
import importlib
import json
import os
import sys
import traceback

from . import alertstore, approvals, operations, permissions, queries, scheduler
from .journal import disk_error
from .layout import AgentError, Root
from .protocol import Cancelled, emit_to, fail


def _with_jobs(query):
    """hello and status start the job scheduler when they find it dead (a root with jobs only), and
    status lists the jobs that are late or failing, for `berth status`."""
    def run(ctx, req):
        result = query(ctx, req)
        try:
            scheduler.ensure(ctx.root)
        except OSError:
            pass  # never fail a hello over the scheduler: job_list says it is not running
        if query is queries.status:
            from . import jobs

            listed = jobs.job_list(ctx, {})
            result["jobs"] = [{k: j[k] for k in ("name", "model", "late", "failing", "paused", "last_state")}
                              for j in listed["jobs"]]
            result["scheduler"] = listed["scheduler"]  # running or not, and what brings it back after a reboot
            result.update(alertstore.firing_status(ctx.root))  # alerts_firing, alerts_firing_key
        return result
    run.__name__ = query.__name__
    return run


def _watched(change):
    """After a change that leaves a runner serving, the scheduler runs: its watchdog restarts the
    runner if it dies (watchdog.py)."""
    def run(ctx, req):
        result = change(ctx, req)
        try:
            scheduler.ensure(ctx.root)
        except OSError:
            pass  # the change is done; `berth status` starts the scheduler again
        return result
    run.__name__ = change.__name__
    return run


def _lazy(module, name):
    """A command whose module is imported when it is called: a session starts for every connection,
    and a deploy needs 35 of the agent's modules, not the 61 every command's would be (the jobs'
    bring sqlite3 and csv, the alerts' smtplib, ssl and email)."""
    def command(ctx, req):
        return getattr(importlib.import_module("." + module, __package__), name)(ctx, req)
    command.__name__ = name
    return command


COMMANDS = {
    "hello": _with_jobs(queries.hello),
    "status": _with_jobs(queries.status),
    "releases": queries.list_releases,
    "logs": queries.logs,
    "example": queries.example,
    "journal": queries.read_journal,
    "deploy": _watched(operations.deploy),
    "rollback": _watched(operations.rollback),
    "start": _watched(operations.start),
    "stop": operations.stop,
    "unlock": operations.unlock,
    "port.set": _watched(_lazy("portchange", "set_port")),
    "port_range.set": _lazy("portrange", "set_port_range"),
    "sample": _lazy("sampler", "sample"),
}
COMMANDS.update(permissions.COMMANDS)
COMMANDS.update(approvals.COMMANDS)


def _approve(ctx, req):
    """Four eyes: perform the change request `id` stored, exactly as it was asked (approvals.py)."""
    command, change = approvals.decide(ctx, req)
    if command is None:
        return change  # rejected
    return dict(COMMANDS[command](ctx, change), approval=change["approval"], command=command)


COMMANDS["approve"] = _approve


LAZY = {"alerts": ("alert_add", "alert_list", "alert_state", "alert_test", "alert_silence", "alert_remove"),
        "alertsmtp": ("alert_smtp_set",), "alertmail": ("alert_smtp_test",),
        "experiment": ("experiment_start", "experiment_status", "experiment_stop"),
        "feedback": ("feedback_add",), "labelfigures": ("feedback_figures",),
        "releaseexport": ("release_files", "release_read"), "replay": ("replay",),
        "sharedroot": ("init_shared_root",)}
LAZY.update({"containerengine": ("container_check", "container_set")})
LAZY["serverfacts"] = ("server_facts",)
LAZY["containerexport"] = ("image_facts",)  # berth export kubernetes (issue 19)
LAZY["sampleonce"] = ("sample_once",)  # berth monitor --once inside the session (issue 23)
LAZY["samplestream"] = ("sample_stream",)  # the console's live samples inside the session
LAZY.update({"jobs": ("job_add", "job_list", "job_run", "job_runs", "job_pause", "job_resume", "job_remove"),
             "jobedit": ("job_edit",), "jobpreview": ("job_preview",)})
COMMANDS.update({name: _lazy(module, name) for module, names in LAZY.items() for name in names})


def on_signal(signum, frame):
    """Installed by __main__: a cut SSH session or a kill becomes a clean, journalled failure."""
    raise Cancelled("signal %d" % signum)


def main(argv, stdin=None, stdout=None):
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    if argv and argv[0] == "session":
        from . import session  # imported here: a one-shot command never loads it
        return session.serve(stdin, stdout)
    if not argv or argv[0] not in COMMANDS:
        stdout.write(json.dumps({"event": "error", "code": "usage",
                                 "message": "usage: agent.py {%s}" % "|".join(sorted(COMMANDS) + ["session"])}) + "\n")
        return 2
    emit = emit_to(stdout)
    try:
        raw = stdin.read()
        req = json.loads(raw) if raw.strip() else {}
    except ValueError as e:
        return fail(stdout, "bad request: %s: %s" % (type(e).__name__, e), "usage", {})
    return run(argv[0], req, emit, lambda message, code, extra: fail(stdout, message, code, extra))


def _not_yours(path):
    """In a shared root each model's files belong to the member who made them (sharedroot.py)."""
    from .policy import user_name

    probe = path
    while probe and not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    try:
        owner = user_name(os.lstat(probe).st_uid)
    except OSError:
        owner = "another user"
    return ("cannot change %s: it belongs to %s, and Unix permissions let only its owner change it (in a "
            "shared root without a writers group a model's files are its first deployer's): ask %s, or have the "
            "root's owner run `berth server init-shared-root S --group G --writers W` (docs/permissions.md)"
            % (path, owner, owner))


OWN_PROCESS = False  # set by __main__.py: this process is the agent's own


def run(command, req, emit, failed):
    """Run one command on its parsed request: its result goes to `emit`, an error to
    `failed(message, code, extra)`; returns the exit code. Shared by `agent.py COMMAND` and the session."""
    try:
        if not isinstance(req, dict) or not isinstance(req.get("root"), str):
            raise AgentError("the request must be a JSON object with a 'root'", "usage")
        ctx = operations.Context(Root(req["root"]), req.get("actor"), emit)
        if OWN_PROCESS:  # one root per agent process (a session serves one desktop's root); never the
            os.umask(ctx.root.umask())  # umask of a process that calls the agent in-process (tests, `local`)
        pol = permissions.enforce(ctx, command, req)  # the role this Unix user has here, never what Berth claims
        approvals.hold(ctx, command, req, pol)  # four eyes: a held production change waits for a second releaser
        result = COMMANDS[command](ctx, req)
        emit("result", result=result)
        return 0
    except AgentError as e:
        return failed(str(e), e.code, e.extra)
    except (KeyError, TypeError, ValueError) as e:
        return failed("bad request: %s: %s" % (type(e).__name__, e), "usage", {})
    except Exception as e:  # report, never die silently: Berth shows this line to the operator
        if isinstance(e, PermissionError) and e.filename:  # a shared root: another member's files
            return failed(_not_yours(e.filename), "permission_denied", {"path": e.filename})
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):  # any write, not only the journal's
            named = disk_error(e, e.filename or "a file")
            return failed(str(named), named.code, {})
        return failed("agent error: %s: %s" % (type(e).__name__, e), "internal",
                      {"trace": traceback.format_exc().splitlines()[-8:]})
