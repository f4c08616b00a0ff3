"""The job scheduler: one long-lived stdlib process per server root, supervised like a runner (pid
file; started by the agent on `job_add` / `alert_add`, after a deploy / start, and by `hello` /
`status` when found dead, for a root with jobs, alert rules or running models; it ends by itself
when the root has none). The alert evaluator (alerteval.py) and the runner watchdog (watchdog.py)
are threads of it. It wakes for the next due time, starts the job process, and catches up missed
runs ONCE (a scheduler dead for a day runs an hourly job one time, marked late): the next due time
is always computed from now. Run as `python3 -m berth_agent.scheduler --root R`."""
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time

from . import alertstore, crashloop, jobclock, supervise
from .fsutil import read_json, write_json_atomic, _unlink
from .jobclock import CLOCK_ENV, fake_clock_file, iso, now, parse
from .jobstore import LATE_S, list_jobs, new_run_id
from .layout import AgentError, Root
from .runnerenv import runner_environment
from .runnerproc import pid_alive

MAX_SLEEP_S = 2.0  # new jobs, pauses and removals are seen within this


LOG_LIMIT = 1024 * 1024


def files(root):
    """pid file, lock, log (rotated by size by the scheduler itself), and where a crash's output goes.
    In a shared root each member has a scheduler of their own, which runs only the jobs that member
    owns (the Unix owner of the job's folder): a job never runs as another member."""
    stem = "scheduler" if not root.shared() else "scheduler-%s" % _login()
    return tuple(os.path.join(root.meta, stem + ext) for ext in (".json", ".lock", ".log", ".out"))


def _login():
    from .policy import me

    return me().user


def _whole_root(root):
    """The lock of the root-wide duties (the alert evaluator and the runner watchdog): in a shared root
    one member's scheduler holds it at a time (the others run only their jobs); else the scheduler's own."""
    return os.path.join(root.meta, "scheduler.lock")


def runs_here(root, jobdir):
    """Whether this process may run the job: in a shared root only as the member who owns it."""
    if not root.shared():
        return True
    try:
        return os.stat(jobdir.path).st_uid == os.getuid()
    except OSError:
        return False


def log(root, text):
    path = files(root)[2]
    supervise._rotate(path, LOG_LIMIT)
    try:
        with open(path, "a") as f:
            f.write("%s %s\n" % (iso(now()), text))
    except OSError:
        pass


_problems = {}  # job name -> the problem last logged for it


def tick(root, t):
    """Start what is due at `t`; returns the earliest next due time (None: nothing scheduled)."""
    jobs = list_jobs(root)
    if not jobs and (__package__ + ".jobrun") not in sys.modules:
        return None  # a root that only serves models never loads the job machinery
    from . import jobrun
    from .schedule import Schedule

    jobrun.reap()
    wake = None
    for jobdir in jobs:
        if not runs_here(root, jobdir):
            continue  # another member's job: their own scheduler runs it, as them
        try:
            job = jobdir.read()
            state = jobdir.state()
            if job.get("paused"):
                if state.get("next_run"):
                    jobdir.save_state(dict(state, next_run=None))
                continue
            schedule = Schedule.from_json(job["schedule"])
            due = parse(state.get("next_run"))
            if due is None:
                due = schedule.next_after(t)
                jobdir.save_state(dict(state, next_run=iso(due)))
            if t >= due:
                late = (t - due).total_seconds() > LATE_S
                _start(root, jobdir, late, due)
                state = dict(state, last_due=iso(due))
                due = schedule.next_after(t)
                jobdir.save_state(dict(state, next_run=iso(due)))
            wake = due if wake is None or due < wake else wake
        except Exception as e:  # one broken job (or a full disk) must not stop the others, nor the scheduler
            said = "%s: %s" % (type(e).__name__, e)
            if _problems.get(jobdir.name) != said:  # once, not every tick
                log(root, "job %s: %s" % (jobdir.name, said))
            _problems[jobdir.name] = said
        else:
            _problems.pop(jobdir.name, None)
    return wake


def _start(root, jobdir, late, due):
    from . import jobrun

    try:
        run = jobrun.start(root, jobdir, "schedule", late=late, due=due)
        log(root, "started %s run %s%s" % (jobdir.name, run["run_id"], " (late)" if late else ""))
    except AgentError as e:  # visible in the job's runs, not only in this log
        t = now()
        os.makedirs(jobdir.runs, exist_ok=True)
        state = "skipped" if e.code == "busy" else "failed"
        jobdir.write_run({"run_id": new_run_id(t), "job": jobdir.name, "started": iso(t), "ended": iso(t),
                          "state": state, "rows_in": 0, "rows_out": 0, "errors": 0, "batches": 0,
                          "version": None, "late": late, "due": iso(due), "trigger": "schedule", "detail": str(e)})
        log(root, "%s %s: %s" % (state, jobdir.name, e))


def serve(root):
    pid_file, lock_file = files(root)[:2]
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    if not _locked(root, fd):
        return 0  # another scheduler serves this root
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    write_json_atomic(pid_file, {"pid": os.getpid(), "root": root.path, "started_at": iso(now()),
                                 "agent": supervise.PACKAGE_PARENT})
    log(root, "scheduler %d serving %s" % (os.getpid(), root.path))
    duties = _Duties(root, stopping, fd if lock_file == _whole_root(root) else None)
    while not stopping and os.path.isdir(root.meta):
        duties.take()
        if not needed(root, duties.held) and _unneeded_now(root, pid_file, duties.held):
            break
        wake = tick(root, now())
        pause = MAX_SLEEP_S
        if wake is not None:
            pause = min(pause, max(0.05, (wake - now()).total_seconds()))
        jobclock.sleep(pause)  # on an injected clock: until the file changes
    stopping.append(1)  # the threads end too when the loop ended by itself
    duties.join()
    if (read_json(pid_file) or {}).get("pid") == os.getpid():
        _unlink(pid_file)
    log(root, "scheduler %d stopped" % os.getpid())
    return 0


LOCK_WAIT_S = 10.0  # a scheduler that decided to end (pid file gone) keeps the lock while its threads stop


def _locked(root, fd):
    """The root's lock, or False if a live scheduler serves it: one that is ending is waited for (else
    a model started meanwhile would go unwatched: its new scheduler found the lock taken and left)."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while not _try_lock(fd):
        if alive(root) or time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _try_lock(fd):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


RULES_LOOK_S = 2.0  # a rule added to a root whose scheduler only watched runners is seen within this


def _evaluate_once_ruled(root, stopping, log):
    """The evaluator's thread: alerteval (http.client, ssl, email, the sampler) is loaded once the
    root has alert rules, not in every scheduler that only watches runners (24 agent modules, not 44)."""
    while not stopping and os.path.isdir(root.meta):
        if alertstore.has_rules(root):
            from . import alerteval

            return alerteval.run(root, stopping, log)
        end = time.monotonic() + RULES_LOOK_S
        while not stopping and time.monotonic() < end:
            time.sleep(0.2)


def _evaluator_stop_s():
    """How long the scheduler's end waits for the evaluator: a delivery under way may finish."""
    alerteval = sys.modules.get(__package__ + ".alerteval")
    return alerteval.SEND_TIMEOUT_S * 2 if alerteval is not None else 1.0


class _Duties:
    """The alert evaluator and the runner watchdog: threads of the one scheduler holding the root-wide
    lock (`held`); in a shared root a member's scheduler takes them when no other member's has them."""

    def __init__(self, root, stopping, fd):
        self.root, self.stopping, self.fd, self.threads = root, stopping, fd, []
        self.held = False

    def take(self):
        if self.held:
            return
        if self.fd is None:
            fd = _open_whole(self.root)
            if fd is None:
                return
            if not _try_lock(fd):
                os.close(fd)
                return  # another member's scheduler has them
            self.fd = fd
        from . import watchdog  # only this process watches: the agent, which imports this module, stays lean
        self.held = True
        evaluator = threading.Thread(target=_evaluate_once_ruled, args=(self.root, self.stopping, log),
                                     name="alerts", daemon=True)
        evaluator.start()
        self.threads = [(evaluator, None), (watchdog.thread(self.root, self.stopping, log), watchdog.STOP_WITHIN_S)]

    def join(self):
        for thread, timeout in self.threads:
            thread.join(timeout=_evaluator_stop_s() if timeout is None else timeout)


def _unneeded_now(root, pid_file, duties=True):
    """Nothing left to schedule or watch: give up the pid file, then look once more (an agent may
    have started a model meanwhile and found this process alive: then it stays)."""
    if (read_json(pid_file) or {}).get("pid") == os.getpid():
        _unlink(pid_file)
    if needed(root, duties):
        write_json_atomic(pid_file, {"pid": os.getpid(), "root": root.path, "started_at": iso(now()),
                                     "agent": supervise.PACKAGE_PARENT})
        return False
    return True


def alive(root):
    """The pid of the scheduler serving this root, or None."""
    rec = read_json(files(root)[0]) or {}
    pid = rec.get("pid")
    return pid if is_scheduler_of(pid, root.path) else None


def is_scheduler_of(pid, root_path):
    """Is `pid` a running scheduler of this root, and not a process that reused a stale pid file's pid?"""
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
        with open("/proc/%d/stat" % pid, "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
                return False
    except (OSError, IndexError):
        return not os.path.isdir("/proc/self")
    return any(a.endswith(b".scheduler") for a in argv) and root_path.encode() in argv


def _mine(root, pid):
    """In a shared root each member has an agent of their own: another member's scheduler is left alone."""
    if not root.shared():
        return True
    try:
        return os.stat("/proc/%d" % pid).st_uid == os.getuid()
    except OSError:
        return True


_started = []  # guarded by _guard: a session runs hello and status in threads
_guard = threading.Lock()


def ensure(root):
    """Start the scheduler if this root has jobs and none serves it; returns (pid, started_now)."""
    with _guard:
        return _ensure(root)


def _ensure(root):
    for proc in list(_started):
        if proc.poll() is not None:
            _started.remove(proc)
    pid = alive(root)
    if pid and (read_json(files(root)[0]) or {}).get("agent") != supervise.PACKAGE_PARENT and _mine(root, pid):
        log(root, "scheduler %d runs another agent's code: restarted with this one" % pid)
        stop(root)  # Berth installed a new agent: the scheduler and its job processes follow it
        pid = None
    if pid or not needed(root):
        return pid, False
    out_path = files(root)[3]
    supervise._rotate(out_path, LOG_LIMIT)
    env = dict(runner_environment(), PYTHONPATH=supervise.PACKAGE_PARENT, PYTHONUNBUFFERED="1",
               PYTHONDONTWRITEBYTECODE="1")
    if fake_clock_file():
        env[CLOCK_ENV] = fake_clock_file()  # tests only (jobclock.py)
    with open(out_path, "ab") as out:
        proc = subprocess.Popen(command(root), cwd=root.path, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    _started.append(proc)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not alive(root) and proc.poll() is None:
        time.sleep(0.02)
    return alive(root) or proc.pid, True


def needed(root, duties=None):
    """Has this root jobs, alert rules or running models (each keeps the scheduler process running)?
    In a shared root: jobs of this member, or root-wide duties (`duties`: this scheduler has them;
    None: the question is asked from outside, so whether another member's scheduler has them)."""
    if not root.shared():
        return scheduled(root) or bool(crashloop.supervised(root))
    if any(runs_here(root, j) for j in list_jobs(root)):
        return True
    if not (alertstore.has_rules(root) or crashloop.supervised(root)):
        return False
    if duties is not None:
        return duties
    return os.access(root.meta, os.W_OK) and not _duties_taken(root)  # a viewer of a root with writers: never


def _open_whole(root):
    """The root-wide lock, opened to be locked (read-only when another member made it), or None."""
    for flags in (os.O_RDONLY, os.O_RDWR | os.O_CREAT):  # missing: made, by whoever comes first
        try:
            return os.open(_whole_root(root), flags, 0o660)
        except FileNotFoundError:
            continue
        except OSError:
            return None
    return None


def _duties_taken(root):
    fd = _open_whole(root)
    try:
        return fd is None or not _try_lock(fd)
    finally:
        if fd is not None:
            os.close(fd)


def scheduled(root):
    """Has this root jobs or alert rules: what the reboot hook brings the scheduler back for (a
    model-only root's runners come back at Berth's next connection, docs/serving.md)."""
    return bool(list_jobs(root) or alertstore.has_rules(root))


def command(root):
    # -S: the stdlib only, and no site-packages .pth files read at every start (31 -> 7 ms on a pyenv
    # Python); this is also the reboot line (jobreboot.py)
    return [sys.executable, "-S", "-m", supervise.PACKAGE + ".scheduler", "--root", root.path]


def stop(root, timeout=10.0):
    """SIGTERM the scheduler (its current sleep ends it): the last job removed, a new agent, tests."""
    pid = alive(root)
    if not pid:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(root) and time.monotonic() < deadline:
        for proc in list(_started):
            proc.poll()
        time.sleep(0.05)
    if alive(root):
        os.kill(pid, signal.SIGKILL)
    for proc in list(_started):
        if proc.pid == pid:  # ours: collect it (its pid file goes a moment before it exits)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.poll() is not None:
            _started.remove(proc)
    return True


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "--root" or not argv[1]:  # (no argparse: one option)
        sys.stderr.write("usage: python3 -m berth_agent.scheduler --root R\n")
        return 2
    root = Root(argv[1])
    os.umask(root.umask())  # private, or group-readable in a shared root (layout.py)
    return serve(root)


if __name__ == "__main__":
    sys.exit(main())
