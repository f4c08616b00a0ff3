"""Where a job lives on the server, and its history:
    <root>/jobs/<name>/job.json       the definition (written by agent commands, under the server lock)
                      state.json      the scheduler's: next_run
                      runs/<id>.json  one per run, written by the job process (detail: the last KEEP_RUNS)
                      daily.json      older runs rolled up into totals per day
                      job.log         the job process's output, rotated by size
                      run.lock        flock held by a running job process: one run of a job at a time"""
import fcntl
import os
import re

from .fsutil import read_json, write_json_atomic, _unlink
from .jobclock import now, parse
from .layout import NAME_RE, AgentError
from .runnerproc import is_runner_process, pid_alive

KEEP_RUNS = 200
LATE_S = 60  # started more than this after its due time: the run is late (scheduler, alerts)
RUN_ID_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}")
STARTING_S = 30  # a run file with no pid yet, older than this: its process never started


def jobs_dir(root):
    return os.path.join(root.path, "jobs")


def check_job_name(name):
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise AgentError("invalid job name %r: lower-case letters, digits and '-', starting with a letter"
                         % (name,), "usage")
    return name


class JobDir:
    def __init__(self, root, name):
        self.name = check_job_name(name)
        self.path = os.path.join(jobs_dir(root), name)
        self.definition = os.path.join(self.path, "job.json")
        self.state_file = os.path.join(self.path, "state.json")
        self.runs = os.path.join(self.path, "runs")
        self.daily = os.path.join(self.path, "daily.json")
        self.log = os.path.join(self.path, "job.log")
        self.lock = os.path.join(self.path, "run.lock")

    def exists(self):
        return os.path.isfile(self.definition)

    def read(self):
        job = read_json(self.definition)
        if not isinstance(job, dict):
            raise AgentError("there is no job %s on this server" % self.name, "no_job")
        return job

    def write(self, job):
        write_json_atomic(self.definition, job)

    def state(self):
        s = read_json(self.state_file)
        return s if isinstance(s, dict) else {}

    def save_state(self, state):
        write_json_atomic(self.state_file, state)

    def run_file(self, run_id):
        if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id):
            raise AgentError("invalid run id %r" % (run_id,), "usage")
        return os.path.join(self.runs, run_id + ".json")

    def read_run(self, run_id):
        return read_json(self.run_file(run_id))

    def write_run(self, run):
        write_json_atomic(self.run_file(run["run_id"]), run)

    def run_ids(self):
        try:
            return sorted(n[:-5] for n in os.listdir(self.runs) if n.endswith(".json") and RUN_ID_RE.fullmatch(n[:-5]))
        except OSError:
            return []

    def runs_newest_first(self, limit):
        out = []
        for run_id in reversed(self.run_ids()):
            run = self.read_run(run_id)
            if isinstance(run, dict):
                out.append(settled(self, run))
            if len(out) >= limit:
                break
        return out

    def busy(self):
        """Is a job process holding run.lock (a run of this job is going)?"""
        try:
            fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False


def pinned_versions(root, model):
    """The versions of `model` that jobs are pinned to: a deploy's pruning keeps them (a job whose
    release was pruned would fail every run with "no release")."""
    pinned = set()
    for jobdir in list_jobs(root):
        job = read_json(jobdir.definition)
        if isinstance(job, dict) and job.get("model") == model and isinstance(job.get("version"), str):
            pinned.add(job["version"])
    return pinned


def list_jobs(root):
    try:
        names = sorted(os.listdir(jobs_dir(root)))
    except OSError:
        return []
    return [JobDir(root, n) for n in names if NAME_RE.fullmatch(n) and os.path.isfile(
        os.path.join(jobs_dir(root), n, "job.json"))]


def new_run_id(t=None):
    return (t or now()).strftime("%Y%m%dT%H%M%SZ") + "-" + os.urandom(3).hex()


def settled(jobdir, run):
    """A run still marked running whose process is gone (SIGKILL, reboot) reads as failed."""
    if run.get("state") != "running":
        return run
    pid = run.get("pid")
    if isinstance(pid, int):
        # a process being killed loses its command line before its files close: while it still holds
        # run.lock it is not gone yet (else a `job run` right after would read failed, then busy)
        if pid_alive(pid) and (is_runner_process(pid, run["run_id"]) or jobdir.busy()):
            return run
    else:
        started = parse(run.get("started"))
        if started is None or (now() - started).total_seconds() < STARTING_S:
            return run
    return dict(run, state="failed", ended=run.get("ended") or run.get("updated"),
                detail="the job process ended before the run finished (killed, or the server went down); "
                       "the next run takes up its input again")


def roll_up(jobdir, keep=KEEP_RUNS):
    """Keep the last `keep` runs in detail; fold older ones into daily totals (bounded history)."""
    ids = jobdir.run_ids()
    if len(ids) <= keep:
        return 0
    daily = read_json(jobdir.daily, {}) or {}
    for run_id in ids[:-keep]:
        run = jobdir.read_run(run_id)
        if isinstance(run, dict):
            run = settled(jobdir, run)
            day = daily.setdefault(run_id[:8], {"runs": 0, "ok": 0, "failed": 0, "late": 0, "rows_in": 0,
                                                "rows_out": 0, "errors": 0})
            day["runs"] += 1
            day["ok" if run.get("state") == "ok" else "failed"] += run.get("state") != "skipped"
            day["late"] += bool(run.get("late"))
            for k in ("rows_in", "rows_out", "errors"):
                day[k] += int(run.get(k) or 0)
        _unlink(jobdir.run_file(run_id))
    write_json_atomic(jobdir.daily, daily)
    return len(ids) - keep
