"""Starting one run of a job (by the scheduler when due, by `job_run` now): the job process runs in
the release's virtualenv, in a session of its own (it outlives the SSH channel and the scheduler),
with the runner's environment (runnerenv.py) and its output in the job's rotated log."""
import os
import subprocess
import threading

from . import pgdriver, supervise
from .jobio import uses_postgres
from .jobclock import CLOCK_ENV, fake_clock_file, iso, now
from .jobstore import new_run_id
from .layout import AgentError
from .runnerenv import runner_environment

_children = []  # started by this process, reaped on later calls: no zombies in a long-lived scheduler
_guard = threading.Lock()  # the session runs commands in threads


def reap():
    with _guard:
        for proc in list(_children):
            if proc.poll() is not None:
                _children.remove(proc)


def job_version(root, job):
    """The version a run uses: the pinned one, or `current` now."""
    model = root.model(job["model"])
    version = job.get("version") or model.current_version()
    if not version or not os.path.isfile(os.path.join(model.release(version), "release.json")):
        raise AgentError("%s has no %s on this server: the job cannot run"
                         % (job["model"], "release " + version if version else "current release"), "no_release")
    return version


def process_env(root, job):
    """The environment of a process of a job in its release's venv (the run, its output's preview)."""
    env = dict(runner_environment(), PYTHONPATH=supervise.PACKAGE_PARENT, PYTHONUNBUFFERED="1",
               PYTHONDONTWRITEBYTECODE="1")
    if uses_postgres(job):  # libpq finds the password there (pgurl.py), never in argv or job.json
        env.update(pgdriver.job_environment(root))
    if fake_clock_file():
        env[CLOCK_ENV] = fake_clock_file()  # tests only (jobclock.py)
    return env


def venv_command(release, module, *args):
    """`python -m berth_agent.<module> ARGS` with the release's venv python."""
    return [supervise.venv_python(release), "-m", supervise.PACKAGE + "." + module] + list(args)


def start(root, jobdir, trigger, late=False, due=None):
    """Start a run; returns its RUN record (state running). Refused while a run of the job goes on."""
    reap()
    job = jobdir.read()
    last = jobdir.runs_newest_first(1)
    if jobdir.busy() or (last and last[0].get("state") == "running"):  # started, lock not taken yet
        raise AgentError("a run of job %s is still going; wait for it to end" % jobdir.name, "busy")
    version = job_version(root, job)
    release = root.model(job["model"]).release(version)
    t = now()
    run = {"run_id": new_run_id(t), "job": jobdir.name, "started": iso(t), "ended": None, "state": "running",
           "rows_in": 0, "rows_out": 0, "errors": 0, "batches": 0, "version": version, "late": bool(late),
           "due": iso(due) if due else None, "trigger": trigger, "pid": None}
    os.makedirs(jobdir.runs, exist_ok=True)
    supervise._rotate(jobdir.log)
    cmd = venv_command(release, "jobprocess", "--root", root.path, "--job", jobdir.name, "--run-id", run["run_id"],
                       "--version", version)
    with open(jobdir.log, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=release, env=process_env(root, job), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    with _guard:
        _children.append(proc)
    run["pid"] = proc.pid
    jobdir.write_run(run)
    return run
