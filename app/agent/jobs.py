"""The job commands: job_add, job_list, job_run, job_runs, job_pause, job_resume, job_remove. A
change is validated first (nothing is written for a refused one), then made under the server lock
and journalled like a deploy ("started", then "ok" or "failed"). Thread-safe for the session: all
state is in files, written atomically, and changes hold the server lock."""
import os
import shutil
import uuid

from . import journal, jobreboot, jobrun, pgdriver, pgurl, releases, scheduler, supervise
from .fsutil import write_json_atomic
from .jobclock import iso, now, parse
from .jobinputs import SqliteInput
from .jobplaces import not_berths_own
from .jobio import check_output, open_input, uses_postgres
from .jobstore import JobDir, jobs_dir, list_jobs
from .layout import AgentError, check_name, check_version
from .lock import ServerLock
from .operations import _desktop_head
from .schedule import ScheduleError, parse_schedule

RUNS_LIMIT = 1000


def _changed(ctx, req, action, name, model, fn, what="job"):
    """Under the lock: journal started, run fn(root) -> result, journal ok (or failed, and re-raise).
    `what`: the kind of thing changed (a job, an alert), its name journalled under that key."""
    root = ctx.root.ensure()
    ids = req.get("event_ids") if isinstance(req.get("event_ids"), dict) else {}
    with ServerLock(root.lock, {"who": ctx.who(), "what": "%s %s" % (action, name)}):
        base = {"model": model, what: name, "reason": req.get("reason")}
        started = journal.append(root, action, "started", ctx.actor, ids.get("started"),
                                 desktop_head=_desktop_head(req), **base)
        base["ref"] = started["id"]
        try:
            result = fn(root)
        except BaseException as e:
            journal.append(root, action, "failed", ctx.actor, ids.get("outcome"),
                           detail="%s %s: %s" % (what, name, str(e) or type(e).__name__),
                           **base)
            raise
        result["detail"] = "%s %s: %s" % (what, name, result.get("detail", ""))
        journal.append(root, action, "ok", ctx.actor, ids.get("outcome"), detail=result["detail"], **base)
    return result


def _validated(ctx, req):
    """The job definition a job_add request asks for, or the one clear reason it cannot be."""
    root = ctx.root
    name = JobDir(root, req.get("name")).name
    model_name = check_name(req.get("model"))
    model = root.model(model_name)
    version = req.get("version")
    if version is not None:
        check_version(version)
        if releases.read_release(model, version) is None:
            raise AgentError("%s has no release %s on this server (kept: %s)" % (
                model_name, version, ", ".join(r["version"] for r in releases.list_releases(model)) or "none"),
                "no_release")
    elif model.current_version() is None:
        raise AgentError("%s is not deployed on this server; deploy it first" % model_name, "not_deployed")
    spec = req.get("schedule") or {}
    if not isinstance(spec, dict):
        raise AgentError("schedule must be {\"every\": ...} or {\"cron\": ...}", "bad_schedule")
    tz = req.get("tz") or "UTC"
    schedule = parse_schedule(every=spec.get("every"), cron=spec.get("cron"), tz=tz)
    source = req.get("input") or {}
    if not isinstance(source, dict):
        raise AgentError("input must be an object", "bad_input")
    if source.get("kind") == "dir":
        path = source.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise AgentError("the input folder must be an absolute path on the server, not %r" % (path,), "bad_input")
        if not os.path.isdir(path):
            raise AgentError("the input folder %s does not exist on the server" % path, "bad_input")
        pattern = source.get("pattern") or "*"
        if not isinstance(pattern, str) or "/" in pattern or "\0" in pattern:
            raise AgentError("pattern %r must be a file name pattern such as *.csv" % (pattern,), "bad_input")
        source = {"kind": "dir", "path": os.path.normpath(path), "pattern": pattern}
    else:
        source = {"kind": source.get("kind"), "url": source.get("url"), "sql": source.get("sql"),
                  "watermark": source.get("watermark")}
        if source["kind"] == "db" and pgurl.is_pg(source["url"]):
            pgurl.parse(source["url"], "input")
        else:
            reader = open_input(source, now)
            if isinstance(reader, SqliteInput):
                reader.check()
    output = req.get("output") or {}
    if not isinstance(output, dict):
        raise AgentError("output must be an object with url and table", "bad_output")
    check_output(output.get("url"), output.get("table"))
    not_berths_own(root, source, output)
    job = {"input": source, "output": {"url": output["url"], "table": output["table"]}}
    passwords = _postgres_checked(ctx, job, model.release(version or model.current_version()), req.get("db_passwords"))
    return passwords, {"name": name, "model": model_name, "version": version, "schedule": schedule.to_json(), "tz": tz,
            "input": source, "output": {"url": output["url"], "table": output["table"]}, "paused": False,
            "keep_done_days": 30, "created": iso(now()), "created_by": ctx.actor}


def _postgres_checked(ctx, job, release, passwords):
    """For a job on PostgreSQL: the driver in the release's virtualenv, then the check run there with
    the passwords given (in a passfile of its own, removed after); returns [(conn, password)] for the
    server's passfile. Messages never carry a password."""
    urls = uses_postgres(job)
    passwords = passwords or {}
    if not isinstance(passwords, dict) or not all(isinstance(v, str) for v in passwords.values()):
        raise AgentError("db_passwords must map postgresql:// URLs to passwords", "usage")
    if not urls:
        if passwords:
            raise AgentError("db_passwords given for a job that uses no PostgreSQL database", "usage")
        return []
    entries = []
    for url, password in passwords.items():
        if pgurl.canonical(url, "output") not in urls:
            raise AgentError("a password was sent for %s, which the job does not use" % pgurl.canonical(url), "usage")
        entries.append((pgurl.parse(url), password))
    pgdriver.ensure(release, ctx.emit)
    trial = os.path.join(ctx.root.meta, ".pgpass-check-" + uuid.uuid4().hex)  # session threads: one each
    try:
        pgurl.write_passfile(trial, entries, base=pgurl.passfile_path(ctx.root))
        request = {"output": job["output"] if pgurl.is_pg(job["output"]["url"]) else None,
                   "input": job["input"] if job["input"].get("kind") == "db" and pgurl.is_pg(job["input"].get("url"))
                   else None}
        try:
            pgdriver.check(release, request, trial)
        except AgentError as e:
            message = str(e)
            for _conn, password in entries:
                if len(password) >= 3:  # libpq does not echo it; should anything, it is not shown
                    message = message.replace(password, "***")
            raise AgentError(message, e.code) from None
    finally:
        if os.path.exists(trial):
            os.unlink(trial)
    return entries


def job_add(ctx, req):
    passwords, job = _validated(ctx, req)
    ctx.root.ensure()
    jobdir = JobDir(ctx.root, job["name"])

    def add(root):
        if jobdir.exists():
            other = jobdir.read()
            raise AgentError("a job named %s already exists on this server (for %s); pick another name or remove it "
                             "first" % (jobdir.name, other.get("model")), "job_exists")
        if passwords:
            pgurl.write_passfile(pgurl.passfile_path(root), passwords)
        os.makedirs(jobs_dir(root), exist_ok=True)
        incoming = os.path.join(jobs_dir(root), ".incoming-" + jobdir.name)
        shutil.rmtree(incoming, ignore_errors=True)
        os.makedirs(os.path.join(incoming, "runs"))
        write_json_atomic(os.path.join(incoming, "job.json"), job)
        # the first due time counts from now, not from when the scheduler first looks
        write_json_atomic(os.path.join(incoming, "state.json"), {"next_run": iso(parse_schedule(
            **_schedule_args(job)).next_after(now()))})
        os.rename(incoming, jobdir.path)  # the job appears whole or not at all
        return {"job": describe(root, jobdir), "detail": "%s %s" % (job["model"], parse_schedule(
            **_schedule_args(job)).describe())}
    result = _changed(ctx, req, "job.add", job["name"], job["model"], add)
    result["scheduler"] = _unattended(ctx.root)
    result["job"] = describe(ctx.root, jobdir)
    return result


def _schedule_args(job):
    s = job["schedule"]
    return {"every": s.get("every"), "cron": s.get("cron"), "tz": s.get("tz") or job.get("tz") or "UTC"}


def _unattended(root):
    pid, started = scheduler.ensure(root)
    env = {"PYTHONPATH": supervise.PACKAGE_PARENT, "PYTHONDONTWRITEBYTECODE": "1"}
    reboot = jobreboot.ensure(root, scheduler.command(root), env)
    return {"pid": pid, "started": started, "reboot": reboot["method"], "reboot_detail": reboot["detail"]}


def describe(root, jobdir):
    """The JOB record of job_list."""
    job = jobdir.read()
    t = now()
    last = (jobdir.runs_newest_first(1) or [None])[0]
    try:
        schedule = parse_schedule(**_schedule_args(job))
        said, broken = schedule.describe(), False
    except ScheduleError as e:  # job.json edited by hand: shown, flagged, never run
        schedule, said, broken = None, "unreadable: %s" % e, True
    next_run = None
    if not job.get("paused") and schedule is not None:
        next_run = parse(jobdir.state().get("next_run")) or schedule.next_after(t)
    late = bool(next_run is not None and (t - next_run).total_seconds() > scheduler.LATE_S)
    return {"name": jobdir.name, "model": job["model"], "version": job.get("version"),
            "schedule": said, "tz": job.get("tz") or "UTC", "next_run": iso(next_run),
            "last_run": last.get("started") if last else None, "last_state": last.get("state") if last else None,
            "last_run_id": last.get("run_id") if last else None, "paused": bool(job.get("paused")),
            "input": job["input"], "output": job["output"], "late": late or bool(last and last.get("late")),
            "failing": broken or bool(last and last.get("state") == "failed")}


def job_list(ctx, req):
    model = req.get("model")
    if model is not None:
        check_name(model)
    jobs = []
    for jobdir in list_jobs(ctx.root):
        try:
            j = describe(ctx.root, jobdir)
        except AgentError:
            continue  # removed while we read
        if model is None or j["model"] == model:
            jobs.append(j)
    return {"jobs": jobs, "scheduler": scheduler_state(ctx.root)}


def scheduler_state(root):
    reboot = jobreboot.state(root)
    return {"pid": scheduler.alive(root), "reboot": reboot["method"], "reboot_detail": reboot["detail"]}


def _existing(ctx, req):
    jobdir = JobDir(ctx.root, req.get("name"))
    return jobdir, jobdir.read()


def job_run(ctx, req):
    jobdir, job = _existing(ctx, req)
    result = _changed(ctx, req, "job.run", jobdir.name, job["model"], lambda root: _run_now(root, jobdir))
    scheduler.ensure(ctx.root)
    return result


def _run_now(root, jobdir):
    run = jobrun.start(root, jobdir, "manual")
    return {"run": run, "detail": "run %s" % run["run_id"]}


def job_runs(ctx, req):
    jobdir, _job = _existing(ctx, req)
    limit = req.get("limit", 20)
    if not isinstance(limit, int) or limit < 1:
        raise AgentError("limit must be a positive number", "usage")
    return {"runs": jobdir.runs_newest_first(min(limit, RUNS_LIMIT))}


def _set_paused(paused):
    def change(ctx, req):
        jobdir, job = _existing(ctx, req)

        def write(root):
            current = jobdir.read()
            current["paused"] = paused
            jobdir.write(current)
            if not paused:  # resumed: the next slot from now, the paused ones are not caught up
                schedule = parse_schedule(**_schedule_args(current))
                jobdir.save_state(dict(jobdir.state(), next_run=iso(schedule.next_after(now()))))
            return {"job": describe(root, jobdir), "detail": "paused" if paused else "resumed"}
        result = _changed(ctx, req, "job.pause" if paused else "job.resume", jobdir.name, job["model"], write)
        scheduler.ensure(ctx.root)
        return result
    return change


job_pause = _set_paused(True)
job_resume = _set_paused(False)


def job_remove(ctx, req):
    """The definition and history go; the output database and the inbox's done/ files stay."""
    jobdir, job = _existing(ctx, req)

    def remove(root):
        if jobdir.busy():
            raise AgentError("a run of job %s is still going; wait for it to end, or pause the job first"
                             % jobdir.name, "busy")
        gone = os.path.join(jobs_dir(root), ".removed-" + jobdir.name)
        shutil.rmtree(gone, ignore_errors=True)
        os.rename(jobdir.path, gone)
        shutil.rmtree(gone, ignore_errors=True)
        return {"removed": jobdir.name, "detail": "removed (its output stays in %s)" % job["output"]["url"]}
    result = _changed(ctx, req, "job.remove", jobdir.name, job["model"], remove)
    unneeded(ctx.root)
    return result


def unneeded(root):
    """The last job or alert rule is gone: its reboot hook goes, and the scheduler (and its evaluator)
    stops unless a running model keeps it for the runner watchdog."""
    if not scheduler.scheduled(root):
        jobreboot.remove(root)
    if not scheduler.needed(root):
        scheduler.stop(root)


COMMANDS = {"job_add": job_add, "job_list": job_list, "job_run": job_run, "job_runs": job_runs,
            "job_pause": job_pause, "job_resume": job_resume, "job_remove": job_remove}
