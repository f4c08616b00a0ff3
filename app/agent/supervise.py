"""Runner processes: started in their own session so they outlive the SSH channel, found again
from their pid file, and told apart from an unrelated process that reused the pid."""
import os
import signal
import subprocess
import sys
import time

from .fsutil import read_json, write_json_atomic, _unlink
from .journal import utc_now
from .layout import AgentError, Root
from . import containerrun, runnerproc
from .containerengine import environment as engine_environment
from .runnerenv import runner_environment
from .runnerproc import has_proc, is_runner_process, pid_alive

PACKAGE = __name__.rpartition(".")[0]  # "berth_agent" on a server, "app.agent" in the source tree
PACKAGE_PARENT = os.path.dirname(os.path.abspath(__file__))
for _ in range(PACKAGE.count(".") + 1):
    PACKAGE_PARENT = os.path.dirname(PACKAGE_PARENT)


read_port = runnerproc.read_port  # part of supervise's API (health, operations, Berth's local sampler)


def venv_python(release_dir):
    return os.path.join(release_dir, ".venv", "bin", "python")


def start(model, version, release_dir, declared_env=None, listener=None):
    """Start the runner for `version`; returns its record (pid; port comes once it is ready).
    `listener`: the stable port's listening socket, inherited by the runner (runnershare.py)."""
    os.makedirs(model.run, exist_ok=True)
    os.makedirs(model.logs, exist_ok=True)
    port_file = model.port_file(version)
    _unlink(port_file)
    log_path = model.runner_log(version)
    _rotate(log_path)
    control = model.control_file(version)
    container = None
    if containerrun.is_container(release_dir):  # its spec (engine, image, limits) from the settings of now
        container = containerrun.spec(Root(os.path.dirname(os.path.dirname(model.path))), model, version,
                                      read_json(os.path.join(release_dir, "release.json"))["manifest"])
    python = sys.executable if container else venv_python(release_dir)  # a container's runner forwards: stdlib
    cmd = [python, "-m", PACKAGE + ".runner", "--release", release_dir,
           "--port-file", port_file, "--request-log", model.request_log(), "--log", log_path, "--control", control]
    if container:
        cmd += ["--container", container]
    fds = ()
    if listener is not None:
        fds = (listener.fileno(),)
        cmd += ["--listen-fd", str(fds[0])]
    env = dict(runner_environment(declared_env), **(engine_environment() if container else {}))
    env = dict(env, PYTHONPATH=PACKAGE_PARENT, PYTHONUNBUFFERED="1",
               PYTHONDONTWRITEBYTECODE="1")  # no .pyc beside the agent: its bootstrap refuses bytecode
    with open(log_path, "ab") as log:
        log.write(("--- %s starting %s %s\n" % (utc_now(), model.name, version)).encode())
        log.flush()
        proc = subprocess.Popen(cmd, cwd=release_dir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True, pass_fds=fds)
    _started[proc.pid] = proc
    record = {"pid": proc.pid, "version": version, "release": release_dir, "started_at": utc_now(), "port": None,
              "control": control, "stable_port": listener.getsockname()[1] if listener is not None else None}
    write_json_atomic(model.runner_file(version), record)
    return record


def record(model, version):
    r = read_json(model.runner_file(version))
    return r if isinstance(r, dict) else None


def save_port(model, version, port):
    r = record(model, version)
    if r is not None:
        r["port"] = port
        write_json_atomic(model.runner_file(version), r)


def alive(rec):
    """Is the process of this runner record still ours and running (not a zombie)?"""
    if not rec or not rec.get("pid"):
        return False
    pid = int(rec["pid"])
    proc = _started.get(pid)
    _reap(pid)
    if proc is not None and rec.get("release") in proc.args:
        # Our own child: only its exit says it ended (its pid is ours until it is reaped). /proc was
        # once read as "not our runner" for one that went on to serve, under load (issue 23).
        return pid in _started
    if not pid_alive(pid):
        return False
    if has_proc():
        return is_runner_process(pid, rec.get("release"))
    return True


def running_versions(model):
    """Versions of this model whose runner is alive, whatever `current` says."""
    try:
        names = os.listdir(model.run)
    except OSError:
        return []
    out = []
    for name in sorted(names):
        if name.endswith(".runner.json"):
            try:
                if alive(record(model, name[:-len(".runner.json")])):
                    out.append(name[:-len(".runner.json")])
            except AgentError:
                continue
    return out


def stop_strays(model, keep):
    """Stop the runners of this model's releases other than `keep` (a switch cut short by a killed
    agent can leave the previous runner alive), and any runner no record names (an agent killed
    right after starting it). Called under the lock, before a change starts: every start under the
    lock has written its record by then."""
    stopped = []
    try:
        names = os.listdir(model.run)
    except OSError:
        return stopped
    for name in names:
        if not name.endswith(".runner.json"):
            continue
        version = name[:-len(".runner.json")]
        if version in keep:
            continue
        try:
            alive_now = alive(record(model, version))
        except AgentError:
            continue
        if alive_now:
            stop(model, version)
            stopped.append(version)
    for pid, version in runnerproc.unrecorded_runners(model).items():  # whatever version: nobody owns it
        stop_pid(pid)
        stopped.append(version)
    return stopped


def stop_pid(pid, timeout=10.0):
    """A runner no record names (runnerproc.unrecorded_runners): its group SIGTERMed, SIGKILLed at `timeout`."""
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_runner_process(pid, "--port-file") and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if is_runner_process(pid, "--port-file"):
        _signal_group(pid, signal.SIGKILL)


def stop(model, version, timeout=10.0):
    """SIGTERM the runner's process group, SIGKILL after `timeout`; forget its record."""
    rec = record(model, version)
    if rec and alive(rec):
        pid = int(rec["pid"])
        asked = _ask_to_stop(rec) if _signal_group(pid, signal.SIGTERM) == "denied" else None
        deadline = time.monotonic() + timeout
        while alive(rec) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(rec) and asked == "asked":
            raise AgentError("the runner of %s %s (pid %d, another user's) did not stop within %.0f s of being "
                             "asked (or would not take the request): its user or root must end it (kill %d)" % (model.name, version, pid, timeout, pid),
                             "permission_denied")
        if alive(rec):
            _signal_group(pid, signal.SIGKILL)
            while alive(rec) and time.monotonic() < deadline + 5:
                time.sleep(0.05)
    _unlink(model.runner_file(version))
    _unlink(model.port_file(version))
    _unlink(model.control_file(version))
    if os.path.exists(containerrun.spec_file(model, version)):
        containerrun.remove(containerrun.spec_file(model, version))  # a runner killed before it stopped its own


def _signal_group(pid, sig):
    """None once sent; "denied" when the runner is another user's (a shared root's other writer)."""
    try:
        os.killpg(pid, sig)
    except OSError:
        try:
            os.kill(pid, sig)
        except PermissionError:
            return "denied"
        except OSError:
            pass
    return None


def _ask_to_stop(rec):
    """Another member's runner in a shared root with a writers group: the kernel lets nobody else
    signal it, so it is asked over its control socket to stop itself (handoff.py: `stop`)."""
    from . import handoff

    try:
        reply, _fd = handoff.ask(rec.get("control") or "", "stop")
    except OSError as e:
        reply = str(e)
    if reply not in ("ok", ""):  # "": it ended before its answer was out (nothing to drain); stop() checks
        raise AgentError("the runner (pid %s) belongs to another user and could not be asked to stop (%s): "
                         "its user or root must end it" % (rec.get("pid"), reply or "no answer"), "permission_denied")
    return "asked"


# Runners started by this process, until reaped: the runner outlives the call that started it, and
# a Popen collected while its process runs warns (ResourceWarning: "subprocess ... is still running").
_started = {}
_exited = {}  # pid -> Popen-style returncode of a runner of ours that ended (the watchdog reports it)


def exit_status(pid):
    """How a runner this process started ended (negative: the signal), None if unknown."""
    _reap(pid)
    return _exited.get(pid)


def _reap(pid):
    proc = _started.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            _started.pop(pid, None)  # (a session runs calls in threads)
            _exited[pid] = proc.returncode
        return
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        return
    if got == pid:
        _exited[pid] = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _rotate(path, limit=5 * 1024 * 1024):
    try:
        if os.path.getsize(path) > limit:
            os.replace(path, path + ".1")
    except OSError:
        pass


if sys.platform == "win32":  # pragma: no cover - the agent runs on POSIX servers
    raise ImportError("the Berth agent needs a POSIX server")
