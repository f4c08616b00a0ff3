"""One run of a job, in its own process started with the release's virtualenv python:
    python -m berth_agent.jobprocess --root R --job NAME --run-id ID --version V
It loads the model once (the runner's loading code), reads the input batch by batch, predicts
(`predict_batch(list)` when the model has it), and commits each batch's results, errors and done
mark in one transaction of the output database; only then is an inbox file moved to done/. Killed
anywhere, the next run redoes the batch that was not committed, and only that one."""
import argparse
import fcntl
import gc
import importlib.util
import json
import os
import resource
import sys
import time
import traceback
from itertools import chain
from operator import itemgetter

from . import pgdriver
from .entrypoint import load_entrypoint
from .fsutil import read_json
from .inputshape import load as load_input_check
from .jobclock import iso, now
from .jobio import open_input, open_output, uses_postgres
from .jobplaces import not_berths_own
from .jobstore import JobDir, roll_up
from .layout import AgentError, Root

KEEP_DONE_DAYS = 30
MODEL_OUTPUT_LIMIT = 5 * 1024 * 1024  # characters of the model's own prints kept per run (the log rotates at 5 MB)
LOG = sys.stdout  # Berth's own lines; the model's prints go through _Capped


class _Capped:
    """sys.stdout/sys.stderr for the model's code: a model printing without end must not fill the
    disk (job.log is only rotated when a run starts). Past the limit its output is dropped, once said."""

    def __init__(self, stream, limit):
        self.stream, self.left = stream, limit

    def write(self, text):
        if self.left > 0:
            self.left -= len(text)
            self.stream.write(text if self.left >= 0 else text[:len(text) + self.left])
            if self.left <= 0:
                self.stream.write("\n[berth: the model's output past %d MB in this run is not kept]\n"
                                  % (MODEL_OUTPUT_LIMIT // 1024 // 1024))
                self.stream.flush()
        return len(text)

    def flush(self):
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)
STARTED = time.monotonic()  # the run's own duration, to the millisecond (its times are ISO seconds)


def load_model(release_dir):
    manifest = read_json(os.path.join(release_dir, "release.json"))["manifest"]
    bundle = os.path.join(release_dir, "bundle")
    predict = load_entrypoint(bundle, manifest["entrypoint"])
    owner = getattr(predict, "__self__", None)
    batch = getattr(owner, "predict_batch", None) if owner is not None else None
    if batch is None:
        batch = getattr(sys.modules.get(getattr(predict, "__module__", "")), "predict_batch", None)
    return predict, batch if callable(batch) else None, load_input_check(bundle, manifest)


def predict_all(predict, predict_batch, check, items):
    """[(ref, output)], [(ref, reason, raw)]: a row the input check rejects or the model fails on is
    an error; the others go on. A batch call that raises is retried row by row, to find the bad ones."""
    results, errors, todo = [], [], items if check is None else []
    for ref, value in items if check is not None else ():
        problem = check.problems(value)
        if problem:
            errors.append((ref, "rejected: %s" % problem, _raw(value)))
        else:
            todo.append((ref, value))
    outputs = None
    if predict_batch is not None and todo:
        try:
            outputs = list(predict_batch(list(map(itemgetter(1), todo))))
            if len(outputs) != len(todo):
                outputs = None
        except Exception:
            outputs = None
    if outputs is None:  # no batch call, or it failed: row by row, a failure kept in its row's place
        outputs, rows = [], iter(list(map(itemgetter(1), todo)))
        while len(outputs) < len(todo):
            try:
                outputs.extend(map(predict, rows))  # what came before a failure stays; the next goes on
            except Exception as e:
                outputs.append(_Failed("%s: %s" % (type(e).__name__, e)))
    if _all_plain(outputs):  # the usual batch: no per-row work here
        return list(zip(map(itemgetter(0), todo), outputs)), errors
    for (ref, value), out in zip(todo, outputs):
        try:
            if type(out) is _Failed:
                errors.append((ref, out.reason, _raw(value)))
                continue
            if not _plain(out):
                json.dumps(out)  # what cannot be stored is the row's error, not the batch's
            results.append((ref, out))
        except Exception as e:
            errors.append((ref, "%s: %s" % (type(e).__name__, e), _raw(value)))
    return results, errors


class _Failed:
    """The model raised on this row: its error's reason, in the row's place among the outputs."""

    def __init__(self, reason):
        self.reason = reason


PLAIN = (str, int, float, bool, type(None))
PLAIN_SET = set(PLAIN)


def _plain(out):
    """An object of plain values, or a plain value: storable as is (the common case, checked fast)."""
    if type(out) is dict:
        return all(type(k) is str and type(v) in PLAIN for k, v in out.items())
    return type(out) in PLAIN


def _all_plain(outputs):
    """_plain for a whole batch, in a few passes done in C."""
    kinds = set(map(type, outputs))
    if kinds == {dict}:
        return set(map(type, chain.from_iterable(outputs))) <= {str} and set(
            map(type, chain.from_iterable(map(dict.values, outputs)))) <= PLAIN_SET
    return kinds <= PLAIN_SET


def _raw(value):
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def wait_for(jobdir, run_id, timeout=10.0):
    """The starter writes the run file right after starting us: wait for it, then own it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = jobdir.read_run(run_id)
        if isinstance(run, dict):
            return run
        time.sleep(0.02)
    raise AgentError("run %s has no run file" % run_id, "failed")


def run_job(root, name, run_id, version):
    jobdir = JobDir(root, name)
    run = wait_for(jobdir, run_id)
    run.update(pid=os.getpid(), version=version, updated=iso(now()))
    lock_fd = os.open(jobdir.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        run.update(state="skipped", ended=iso(now()), detail="a run of this job was still going")
        jobdir.write_run(run)
        return 0
    jobdir.write_run(run)
    try:
        return _run(root, jobdir, run, version)
    finally:
        try:
            roll_up(jobdir)
        finally:
            os.close(lock_fd)


def _run(root, jobdir, run, version):
    job = jobdir.read()
    print("%s run %s of %s (%s %s)" % (iso(now()), run["run_id"], jobdir.name, job["model"], version), flush=True,
          file=LOG)
    try:
        release = root.model(job["model"]).release(version)
        predict, predict_batch, check = load_model(release)
        if uses_postgres(job) and importlib.util.find_spec("psycopg") is None:
            pgdriver.ensure(release)  # a release deployed after the job was added has no driver yet
            importlib.invalidate_caches()
        not_berths_own(root, job["input"], job["output"])
        source = open_input(job["input"], now)
        output = open_output(job["output"], jobdir.name)
    except Exception as e:
        return _finish(jobdir, run, "failed", "%s: %s" % (type(e).__name__, e))
    gc.disable()  # a batch's rows live until its commit: the collector would only rescan them, again and again
    try:
        for batch in source.batches(output):
            results, errors = predict_all(predict, predict_batch, check, batch.items)
            errors = batch.bad + errors
            output.commit(batch, results, errors, run["run_id"], version, iso(now()))
            batch.done()
            run["rows_in"] += len(batch.items) + len(batch.bad)
            run["rows_out"] += len(results)
            run["errors"] += len(errors)
            run["batches"] += 1
            run["updated"] = iso(now())
            jobdir.write_run(run)
            del batch, results, errors
            gc.collect(0)  # what the batch left in cycles (its rows were in generation 0 and are gone)
        for name, reason in source.failed:
            run["errors"] += 1
            run.setdefault("failed_files", []).append({"file": name, "reason": reason})
            print("failed: %s: %s" % (name, reason), flush=True, file=LOG)
        if hasattr(source, "prune_done"):
            source.prune_done(int(job.get("keep_done_days") or KEEP_DONE_DAYS))
    except Exception as e:
        traceback.print_exc(file=LOG)
        return _finish(jobdir, run, "failed", "%s: %s" % (type(e).__name__, e))
    finally:
        gc.enable()
        output.close()
    return _finish(jobdir, run, "ok", "%d batch(es)" % run["batches"])


def _finish(jobdir, run, state, detail):
    run.update(state=state, ended=iso(now()), detail=detail, seconds=round(time.monotonic() - STARTED, 3),
               peak_rss_kb=peak_rss_kb())
    jobdir.write_run(run)
    print("%s %s: %s" % (iso(now()), state, detail), flush=True, file=LOG)
    return 0 if state == "ok" else 1


def peak_rss_kb():
    """This process's peak RSS: VmHWM (ru_maxrss would count the image it was forked from)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv=None):
    p = argparse.ArgumentParser(prog="berth-job")
    p.add_argument("--root", required=True)
    p.add_argument("--job", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--version", required=True)
    args = p.parse_args(argv)
    os.umask(Root(args.root).umask())  # private, or group-readable in a shared root (layout.py)
    capped = _Capped(sys.stdout, MODEL_OUTPUT_LIMIT)  # shared: the limit is for the run, both streams
    sys.stdout = sys.stderr = capped
    return run_job(Root(args.root), args.job, args.run_id, args.version)


if __name__ == "__main__":
    sys.exit(main())
