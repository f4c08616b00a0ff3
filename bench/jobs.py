"""Scheduled jobs: rows per second through a trivial model into SQLite beside the pandas script a data
scientist would write, and N simulated days of an hourly job on an injected clock (disk and RSS).

    .venv/bin/python bench/jobs.py                          # 100,000 rows, batch and row-by-row models
    .venv/bin/python bench/jobs.py --repeat 3               # medians of 3 runs of each
    .venv/bin/python bench/jobs.py --postgres --repeat 3    # and into PostgreSQL (bench/jobs_pg.py)
    .venv/bin/python bench/jobs.py --rows 0 --simulate-days 60
    .venv/bin/python bench/jobs.py --rows 1000 --simulate-days 2   # a quick check of both

Everything lives in one fresh temp folder (the server root, the inboxes, the outputs), removed at the
end; the scheduler is stopped and its reboot hook (crontab line / user unit) removed. The job runs for
real: the agent's job_add / job_run commands, the job process in the release's virtualenv, the real
scheduler process for the simulation. Needs pandas (the `bench` extra) for the reference, and for
--postgres PostgreSQL 15's binaries, SQLAlchemy and psycopg (the `bench` extra too)."""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")

from _kit import clean_env, source_state, table  # noqa: E402

# The same trivial model on both sides: a few arithmetic and text operations per row.
ROW_MODEL = '''
def _one(row):
    return {"score": row["a"] * 0.5 + row["b"], "big": row["n"] > 500, "tag": row["text"][:4]}


class Model:
    def predict(self, row):
        return _one(row)
'''
BATCH_MODEL = ROW_MODEL + '''
    def predict_batch(self, rows):
        return [_one(r) for r in rows]
'''

# What a data scientist writes for the same work: pandas read_csv -> the model -> DataFrame.to_sql.
PANDAS_SCRIPT = '''
import glob, importlib.util, os, sqlite3, sys, time
t0 = time.perf_counter()
import pandas as pd

model_py, inbox, out_db, version = sys.argv[1:5]
spec = importlib.util.spec_from_file_location("model", model_py)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
model = mod.Model()
batch = getattr(model, "predict_batch", None)
conn = sqlite3.connect(out_db)
rows_in = 0
when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
for path in sorted(glob.glob(os.path.join(inbox, "*.csv"))):
    df = pd.read_csv(path)
    records = df.to_dict("records")
    preds = batch(records) if batch else [model.predict(r) for r in records]
    out = pd.DataFrame(preds)
    out.insert(0, "time", when)
    out.insert(0, "input_ref", os.path.basename(path) + ":" + (df.index + 2).astype(str))
    out.insert(0, "model_version", version)
    out.insert(0, "run_id", "pandas")
    out.to_sql("scores", conn, if_exists="append", index=False)
    rows_in += len(df)
conn.close()
took = time.perf_counter() - t0
hwm = [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
print(rows_in, took, hwm)
'''

EXAMPLE = '{"id": 1, "a": 1.5, "b": 0.25, "n": 700, "text": "alpha bravo 1"}'
T0 = datetime(2026, 1, 1, 0, 30, tzinfo=timezone.utc)


# -- data -------------------------------------------------------------------------------------------

def write_csvs(folder: Path, rows: int, files: int, seed: int = 14) -> list[Path]:
    """`rows` CSV rows over `files` files: an id, two decimals, an integer and a text column."""
    rnd = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    out, start = [], 0
    for i in range(files):
        n = rows // files + (1 if i < rows % files else 0)
        path = folder / f"part-{i:04d}.csv"
        with open(path, "w") as f:
            f.write("id,a,b,n,text\n")
            for r in range(start, start + n):
                f.write(f"{r},{rnd.uniform(-100, 100):.4f},{rnd.uniform(0, 1):.6f},{rnd.randrange(1000)},"
                        f"{rnd.choice(words)} {rnd.choice(words)} {r % 97}\n")
        start += n
        out.append(path)
    return out


def fill(inbox: Path, sources: list[Path]) -> None:
    """Hard links of the generated files (not timed; the job moves them to done/)."""
    for d in ("done", "failed"):
        shutil.rmtree(inbox / d, ignore_errors=True)
    for p in sources:
        os.link(p, inbox / p.name)


def remove_db(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(db) + suffix).unlink(missing_ok=True)


# -- Berth's side ---------------------------------------------------------------------------------

class Server:
    """A server root driven the way Berth drives it: agent commands, real job processes."""

    def __init__(self, base: Path):
        self.base = base
        self.root = base / "srv"

    def call(self, command: str, **payload):
        from agent_kit import call
        result, error, _ = call(self.root, command, **payload)
        if error is not None:
            raise SystemExit(f"agent {command} refused: {error.get('message', error)}")
        return result

    def deploy(self, name: str, source: str) -> Path:
        from agent_kit import deploy, make_bundle
        folder = make_bundle(self.base / f"bundle-{name}", name=name, model_src=source, example=EXAMPLE)
        result, error, _ = deploy(self.root, folder)
        if error is not None:
            raise SystemExit(f"deploy of {name} failed: {error.get('message', error)}")
        return folder / "model.py"

    def add_job(self, name: str, model: str, inbox: Path, out_db: Path, every: str) -> dict:
        inbox.mkdir(parents=True, exist_ok=True)
        return self.call("job_add", name=name, model=model, schedule={"every": every}, tz="UTC",
                         input={"kind": "dir", "path": str(inbox), "pattern": "*.csv"},
                         output={"url": f"sqlite:///{out_db}", "table": "scores"}, version=None)

    def jobdir(self, name: str):
        from app.agent.jobstore import JobDir
        from app.agent.layout import Root
        return JobDir(Root(str(self.root)), name)

    def wait_ended(self, name: str, run_id: str | None = None, due: str | None = None, timeout=600.0) -> dict:
        """The run (by id, or by its due time) once it has ended and its process let go of the job."""
        jobdir = self.jobdir(name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for run_id_ in reversed(jobdir.run_ids()[-3:]):
                run = jobdir.read_run(run_id_)
                if not isinstance(run, dict) or (run_id and run["run_id"] != run_id) or (due and run.get("due") != due):
                    continue
                if run.get("state") != "running" and not jobdir.busy():
                    return run
            time.sleep(0.005)
        raise SystemExit(f"run {run_id or due} of job {name} did not end within {timeout:.0f}s")

    def close(self) -> None:
        from jobs_kit import cleanup
        if self.root.is_dir():
            cleanup(self.root)


def berth_run(server: Server, job: str) -> dict:
    t0 = time.perf_counter()
    run = server.call("job_run", name=job)["run"]
    done = server.wait_ended(job, run_id=run["run_id"])
    done["wall_s"] = time.perf_counter() - t0
    _pid, _status, usage = os.wait4(run["pid"], 0)  # the agent ran in this process: the job process is our child
    done["cpu_s"] = usage.ru_utime + usage.ru_stime
    if done["state"] != "ok" or done["errors"]:
        raise SystemExit(f"job {job} run {done['run_id']}: {done['state']}, {done['errors']} error(s): "
                         f"{done.get('detail')}\n{Path(server.jobdir(job).log).read_text()[-2000:]}")
    return done


def pandas_run(script: Path, model_py: Path, inbox: Path, out_db: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(script), str(model_py), str(inbox), str(out_db), "1.0.0"],
                            env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read()
    proc.stdout.close()
    _pid, status, usage = os.wait4(proc.pid, 0)  # its own CPU time and exit, not a child's
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"the pandas script failed ({proc.returncode}):\n{out.decode(errors='replace')[-2000:]}")
    rows, seconds, rss = out.split()[-3:]  # its last line; warnings may come before it
    return {"rows_in": int(rows), "seconds": float(seconds), "wall_s": wall, "peak_rss_kb": int(rss),
            "cpu_s": usage.ru_utime + usage.ru_stime}


def count(db: Path) -> int:
    import sqlite3
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM scores").fetchone()[0]
    finally:
        conn.close()


def throughput(base: Path, server: Server, args) -> None:
    import importlib.util
    if importlib.util.find_spec("pandas") is None:
        raise SystemExit("the reference needs pandas: pip install -e .[bench]  (or: pip install pandas)")
    sources = write_csvs(base / "source", args.rows, args.files)
    script = base / "pandas_job.py"
    script.write_text(PANDAS_SCRIPT)
    print(f"{args.rows:,} CSV rows in {args.files} file(s) ({sum(p.stat().st_size for p in sources) / 1e6:.1f} MB), "
          f"{args.repeat} run(s) of each; deploying the two models...", flush=True)
    models = {"batch": server.deploy("scorer", BATCH_MODEL), "row": server.deploy("rowwise", ROW_MODEL)}
    for kind, model in (("batch", "scorer"), ("row", "rowwise")):
        server.add_job(f"bench-{kind}", model, base / f"inbox-{kind}", base / f"out-{kind}.db", "1d")
    samples: dict[tuple, list[dict]] = {}
    for i in range(0 if args.postgres_only else args.repeat):
        for kind in ("batch", "row"):
            inbox, db = base / f"inbox-{kind}", base / f"out-{kind}.db"
            fill(inbox, sources)
            remove_db(db)
            run = berth_run(server, f"bench-{kind}")
            assert run["rows_in"] == args.rows and count(db) == args.rows, (run, count(db))
            samples.setdefault(("berth", kind), []).append(run)
            ref_inbox, ref_db = base / f"ref-{kind}", base / f"ref-{kind}.db"
            shutil.rmtree(ref_inbox, ignore_errors=True)
            ref_inbox.mkdir()
            fill(ref_inbox, sources)
            remove_db(ref_db)
            ref = pandas_run(script, models[kind], ref_inbox, ref_db)
            assert ref["rows_in"] == args.rows and count(ref_db) == args.rows, ref
            samples.setdefault(("pandas", kind), []).append(ref)
            if args.verbose:
                print(f"  run {i + 1} {kind}: berth {args.rows / run['seconds']:,.0f} rows/s "
                      f"(wall {args.rows / run['wall_s']:,.0f}), pandas {args.rows / ref['seconds']:,.0f} rows/s "
                      f"(wall {args.rows / ref['wall_s']:,.0f})", flush=True)
    if not args.postgres_only:
        report(samples, args)
    if args.postgres or args.postgres_only:
        from jobs_pg import measure
        measure(base, server, sources, models["batch"], args, berth_run, fill, table)


def report(samples, args) -> None:
    def med(side, kind, key):
        return statistics.median(r[key] for r in samples[(side, kind)])

    rows = []
    for kind, label in (("batch", "predict_batch(list)"), ("row", "predict(row), row by row")):
        ref_rate = args.rows / med("pandas", kind, "seconds")
        for side in ("berth", "pandas"):
            runs = samples[(side, kind)]
            rates = [args.rows / r["seconds"] for r in runs]
            rate = statistics.median(rates)
            wall = args.rows / med(side, kind, "wall_s")
            rss = med(side, kind, "peak_rss_kb")
            cpu = args.rows / med(side, kind, "cpu_s")
            rows.append((f"{side} ({'job' if side == 'berth' else 'script'})", label, f"{rate:,.0f}",
                         f"{min(rates):,.0f}-{max(rates):,.0f}", f"{wall:,.0f}", f"{cpu:,.0f}",
                         f"{rate / ref_rate:.2f}x", f"{cpu / (args.rows / med('pandas', kind, 'cpu_s')):.2f}x",
                         f"{rss / 1024:.0f} MB"))
    print()
    print(table(rows, ("who", "model", "rows/s", "min-max", "rows/s wall", "rows/CPU-s", "vs pandas", "CPU vs pandas",
                       "peak RSS")))
    print("rows/s: rows_in / the run's own duration (Berth: the run record's `seconds`, from the job process's "
          "start to its\nlast commit; pandas: from the script's first line, imports included); wall: from the "
          "job_run call to the\nrun recorded as ended / from spawning the script to its exit; rows/CPU-s: per "
          "second of the process's\nuser+system CPU time (steadier than wall time on a loaded machine). "
          "Peak RSS: VmHWM of the process.")
    rate = {(side, key): args.rows / med(side, "batch", key) for side in ("berth", "pandas")
            for key in ("seconds", "cpu_s")}
    said = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    print(f"goal (issue 14), batch model into SQLite: >= the pandas script: "
          f"{said(rate['berth', 'seconds'] >= rate['pandas', 'seconds'])} by rows/s, "
          f"{said(rate['berth', 'cpu_s'] >= rate['pandas', 'cpu_s'])} by rows/CPU-s; >= 50,000 rows/s: "
          f"{said(rate['berth', 'seconds'] >= 50_000)} ({rate['berth', 'seconds']:,.0f}), "
          f"{said(rate['berth', 'cpu_s'] >= 50_000)} per CPU-s ({rate['berth', 'cpu_s']:,.0f})")
    print(f"{source_state()}, Python {sys.version.split()[0]}, {os.cpu_count()} cores, load "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (wall figures need an idle machine)")


# -- N simulated days -------------------------------------------------------------------------------

def disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_blocks * 512
    return sum((Path(d) / f).lstat().st_blocks * 512 for d, _dirs, fs in os.walk(path) for f in fs)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def set_clock(path: Path, t: datetime) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(t.isoformat())
    os.replace(tmp, path)


def simulate(base: Path, days: int, rows_per_hour: int) -> bool:
    from app.agent import scheduler
    from app.agent.layout import Root

    clock = base / "now.txt"
    set_clock(clock, T0)
    os.environ["BERTH_FAKE_NOW_FILE"] = str(clock)  # the agent passes it to the scheduler and job processes
    server = Server(base / "sim")
    try:
        server.deploy("scorer", BATCH_MODEL)
        inbox, out = base / "sim" / "data" / "inbox", base / "sim" / "data" / "out.db"
        added = server.add_job("hourly", "scorer", inbox, out, "1h")
        root = Root(str(server.root))
        pid = added["scheduler"]["pid"]
        jobdir = server.jobdir("hourly")
        print(f"\n{days} simulated days of an hourly job ({days * 24} runs, {rows_per_hour} rows each) on an "
              f"injected clock, real scheduler (pid {pid})", flush=True)
        marks, figures, started = {0, days} | set(range(0, days + 1, 10)), [], time.monotonic()
        rnd, step_s = random.Random(60), []
        for hour in range(1, days * 24 + 1):
            name = f"h{hour:05d}.csv"
            lines = "".join(f"{hour * 1000 + i},{rnd.uniform(-9, 9):.3f},{rnd.random():.4f},{rnd.randrange(1000)},"
                            f"sim {hour}\n" for i in range(rows_per_hour))
            (inbox / f".{name}").write_text("id,a,b,n,text\n" + lines)
            os.replace(inbox / f".{name}", inbox / name)  # complete files only, as the docs say
            due = T0.replace(minute=0) + timedelta(hours=hour)
            t = time.monotonic()
            set_clock(clock, due + timedelta(seconds=5))
            run = server.wait_ended("hourly", due=due.strftime("%Y-%m-%dT%H:%M:%SZ"), timeout=120)
            step_s.append(time.monotonic() - t)
            if run["state"] != "ok" or run["rows_out"] != rows_per_hour:
                raise SystemExit(f"the run due {due:%Y-%m-%d %H:%M}: {run['state']}, {run['rows_out']} out: "
                                 f"{run.get('detail')}")
            if hour % 24 == 0 or hour == 1:
                day = hour // 24
                if day in marks and (hour == 1) == (day == 0):
                    now_pid = scheduler.alive(root)
                    if now_pid != pid:
                        raise SystemExit(f"the scheduler changed (pid {pid} -> {now_pid}) on day {day}")
                    figures.append(sim_figures(day, base / "sim", jobdir, inbox, out, pid, time.monotonic() - started))
                    print("  day %(day)d: root %(total)s, jobs/ %(jobs)s (%(runs)d run files), done/ %(done)s "
                          "(%(done_n)d files), logs %(logs)s, output db %(db)s, scheduler RSS %(rss)s  [%(at).0f s]"
                          % figures[-1], flush=True)
        took = time.monotonic() - started
        daily = json.loads(Path(jobdir.daily).read_text()) if Path(jobdir.daily).exists() else {}
        detail = len(jobdir.run_ids())
        total_runs = detail + sum(d["runs"] for d in daily.values())
        ok_runs = sum(d["ok"] for d in daily.values()) + sum(
            1 for r in jobdir.run_ids() if (jobdir.read_run(r) or {}).get("state") == "ok")
        print()
        print(table([(f"day {f['day']}", f["total"], f["jobs"], str(f["runs"]), f["done"], str(f["done_n"]), f["logs"],
                      f["db"], f["rss"]) for f in figures],
                    ("when", "root", "jobs/", "run files", "done/", "files", "logs", "output db", "scheduler RSS")))
        print(f"{total_runs} runs ({ok_runs} ok; {detail} in detail, {len(daily)} days rolled up), "
              f"{count(out):,} result rows; simulation took {took:.0f} s "
              f"(a step: median {statistics.median(step_s) * 1000:.0f} ms, max {max(step_s) * 1000:.0f} ms)")
        print("root: everything under the server root (the releases' virtualenvs included); jobs/: definition, "
              "run files,\ndaily.json, job.log*; logs: job.log* + .berth/scheduler.log*/.out; done/: the inbox's "
              "done/ (pruned after 30 days).")
        bounded = total_runs == days * 24 == ok_runs and detail <= 200
        if days >= 31:
            bounded = bounded and figures[-1]["done_n"] <= 31 * 24
        print(f"bounded: {'yes' if bounded else 'NO'}")
        return bounded
    finally:
        server.close()
        os.environ.pop("BERTH_FAKE_NOW_FILE", None)


def sim_figures(day, root: Path, jobdir, inbox: Path, out: Path, pid: int, at: float) -> dict:
    srv = root / "srv"
    logs = [Path(jobdir.path) / n for n in os.listdir(jobdir.path) if n.startswith("job.log")]
    logs += [p for p in (srv / ".berth").iterdir() if p.name.startswith(("scheduler.log", "scheduler.out"))]
    done = inbox / "done"
    mb = lambda b: f"{b / 1e6:.2f} MB" if b >= 1e5 else f"{b / 1e3:.0f} kB"  # noqa: E731
    return {"day": day, "total": mb(disk(srv) + disk(root / "data")), "jobs": mb(disk(Path(jobdir.path))),
            "runs": len(jobdir.run_ids()), "done": mb(disk(done) if done.is_dir() else 0),
            "done_n": len(os.listdir(done)) if done.is_dir() else 0, "logs": mb(sum(disk(p) for p in logs)),
            "db": mb(sum(disk(Path(str(out) + s)) for s in ("", "-wal") if Path(str(out) + s).exists())),
            "rss": f"{rss_kb(pid) / 1024:.1f} MB", "at": at}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000, help="input rows for the throughput part (0: skip it)")
    p.add_argument("--files", type=int, default=10, help="CSV files the rows are spread over (default 10)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each side (medians, min-max)")
    p.add_argument("--postgres", action="store_true", help="also into a throwaway PostgreSQL 15 (tests/pg_kit.py), "
                   "beside pandas to_sql through SQLAlchemy + psycopg")
    p.add_argument("--postgres-only", action="store_true", help="only the PostgreSQL part (no SQLite runs)")
    p.add_argument("--pg-method", choices=("copy", "multi"), default="copy",
                   help="the pandas side's to_sql method: a COPY callable (default) or multi-row INSERTs of 1,000")
    p.add_argument("--simulate-days", type=int, default=0, metavar="N", help="N days of an hourly job (0: skip)")
    p.add_argument("--rows-per-hour", type=int, default=5, help="rows dropped in the inbox each simulated hour")
    p.add_argument("--keep", action="store_true", help="keep the temp folder and print it")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    if args.rows < 0 or args.simulate_days < 0 or args.files < 1 or args.repeat < 1 or args.rows_per_hour < 1:
        p.error("--rows and --simulate-days must be >= 0, --files, --repeat and --rows-per-hour >= 1")
    base = Path(tempfile.mkdtemp(prefix="berth-jobs-"))
    server = Server(base / "tp")
    ok = True
    try:
        if args.rows:
            throughput(base / "tp", server, args)
        server.close()
        if args.simulate_days:
            ok = simulate(base, args.simulate_days, args.rows_per_hour) and ok
    finally:
        server.close()
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
