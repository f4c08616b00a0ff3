"""job_edit: a job's schedule, time zone, inbox pattern or pinned version changed in place. The
edited definition goes through job_add's own validation (the same refusals, nothing written on
one), then is written under the server lock and journalled as `job.edit`, and the next due time
is computed again from now. The input and output are not editable: a job's marks (files done, the
watermark) live in its output, so another input or output is another job (remove it, add it)."""
from . import scheduler
from .jobclock import iso, now
from .jobs import _changed, _schedule_args, _validated, describe
from .jobstore import JobDir
from .layout import AgentError
from .schedule import ScheduleError, parse_schedule

EDITABLE = ("schedule", "tz", "pattern", "version", "follow_current")
NOT_EDITABLE = ("model", "input", "output", "table", "kind", "url")


def _edited(job, req):
    """The definition with the request's changes applied (not validated yet), and what changed."""
    fixed = [k for k in NOT_EDITABLE if req.get(k) is not None]
    if fixed:
        raise AgentError("a job's %s cannot be edited: remove the job and add it again" % " and ".join(fixed),
                         "not_editable")
    if not any(req.get(k) not in (None, False, "") for k in EDITABLE):
        raise AgentError("nothing to change: give a schedule, tz, pattern, version or follow_current", "usage")
    if req.get("version") is not None and req.get("follow_current"):
        raise AgentError("give a version to pin, or follow_current, not both", "usage")
    new = dict(job)
    if req.get("schedule") is not None:
        if not isinstance(req["schedule"], dict):
            raise AgentError("schedule must be {\"every\": ...} or {\"cron\": ...}", "bad_schedule")
        new["schedule"] = {k: v for k, v in req["schedule"].items() if k in ("every", "cron")}
    if req.get("tz") is not None:
        new["tz"] = req["tz"]
    if req.get("pattern") is not None:
        if job["input"].get("kind") != "dir":
            raise AgentError("pattern goes with an inbox folder; this job reads a query", "bad_input")
        new["input"] = dict(job["input"], pattern=req["pattern"])
    if req.get("version") is not None:
        new["version"] = req["version"]
    elif req.get("follow_current"):
        new["version"] = None
    return new


def _said(job):
    try:
        schedule = parse_schedule(**_schedule_args(job)).describe()
    except ScheduleError:  # a job.json edited by hand: the edit is what repairs it
        schedule = "unreadable schedule"
    return "%s, version %s, pattern %s" % (schedule, job.get("version") or "current",
                                           job["input"].get("pattern") or "-")


def job_edit(ctx, req):
    jobdir = JobDir(ctx.root, req.get("name"))
    old = jobdir.read()
    wanted = _edited(old, req)
    request = {"name": jobdir.name, "model": old["model"], "version": wanted.get("version"),
               "schedule": wanted["schedule"], "tz": wanted.get("tz"), "input": wanted["input"], "output": old["output"]}
    _passwords, checked = _validated(ctx, request)  # the passfile already holds what a PostgreSQL output needs

    def write(root):
        current = jobdir.read()  # under the lock: a pause meanwhile is kept
        for k in ("schedule", "tz", "input", "version"):
            current[k] = checked[k]
        current["edited"], current["edited_by"] = iso(now()), ctx.actor
        jobdir.write(current)
        jobdir.save_state(dict(jobdir.state(), next_run=iso(parse_schedule(**_schedule_args(current))
                                                               .next_after(now()))))
        return {"job": describe(root, jobdir), "detail": "edited: %s (was %s)" % (_said(current), _said(old))}
    result = _changed(ctx, req, "job.edit", jobdir.name, old["model"], write)
    scheduler.ensure(ctx.root)
    return result


COMMANDS = {"job_edit": job_edit}
