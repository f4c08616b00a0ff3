"""bench/jobs.py's PostgreSQL part: the same 100,000 rows through a job into a throwaway PostgreSQL 15
(tests/pg_kit.py), beside the pandas script writing them with `DataFrame.to_sql` through SQLAlchemy +
psycopg 3. The peer gets its strongest setting: a COPY-based `method` callable (the pandas docs'
`psql_insert_copy`, written for psycopg 3's `cursor.copy`), or `--pg-method multi` (multi-row
INSERTs of 1,000 rows). The password goes the way Berth's does: into the keyring under the account
`berth db-password` uses (a throwaway in-memory backend here, as in the tests), from there into
job_add's `db_passwords`; the script reads it from a passfile (PGPASSFILE), never from argv."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PANDAS_PG_SCRIPT = '''
import glob, importlib.util, os, sys, time
t0 = time.perf_counter()
import pandas as pd
import sqlalchemy

model_py, inbox, url, version, method = sys.argv[1:6]


def copy_method(table, conn, keys, data_iter):
    """pandas docs' psql_insert_copy, for psycopg 3: the rows by COPY ... FROM STDIN."""
    dbapi_conn = conn.connection
    with dbapi_conn.cursor() as cur:
        name = ".".join('"%s"' % p for p in ([table.schema] if table.schema else []) + [table.name])
        cols = ", ".join('"%s"' % k for k in keys)
        with cur.copy("COPY %s (%s) FROM STDIN" % (name, cols)) as copy:
            for row in data_iter:
                copy.write_row(row)


spec = importlib.util.spec_from_file_location("model", model_py)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
model = mod.Model()
batch = getattr(model, "predict_batch", None)
engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
rows_in = 0
when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
kw = {"method": copy_method} if method == "copy" else {"method": "multi", "chunksize": 1000}
with engine.begin() as conn:
    for path in sorted(glob.glob(os.path.join(inbox, "*.csv"))):
        df = pd.read_csv(path)
        records = df.to_dict("records")
        preds = batch(records) if batch else [model.predict(r) for r in records]
        out = pd.DataFrame(preds)
        out.insert(0, "time", when)
        out.insert(0, "input_ref", os.path.basename(path) + ":" + (df.index + 2).astype(str))
        out.insert(0, "model_version", version)
        out.insert(0, "run_id", "pandas")
        out.to_sql("scores", conn, if_exists="append", index=False, **kw)
        rows_in += len(df)
engine.dispose()
took = time.perf_counter() - t0
hwm = [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
print(rows_in, took, hwm)
'''


def start_postgres():
    """tests/pg_kit.py's server, or None and the reason when PostgreSQL 15 is not installed."""
    from _pytest.outcomes import Skipped
    from pg_kit import PgServer
    try:
        return PgServer(), None
    except Skipped as e:
        return None, str(e.msg if hasattr(e, "msg") else e)


def keyring_password(url: str, password: str) -> dict[str, str]:
    """The password stored as `berth db-password URL` stores it, and read back the way `job add` does."""
    import keyring
    from app.cli import dbpassword
    from app.remote import credentials
    from keyring_kit import MemoryKeyring
    keyring.set_keyring(MemoryKeyring())  # throwaway: never the developer's keyring
    credentials.set_secret(dbpassword.account(url), password)
    return dbpassword.passwords_for([url])


def passfile(base: Path, pg, db: str) -> Path:
    """The script's PGPASSFILE (libpq's format, ':' and '\\' escaped), mode 0600."""
    path = base / "pandas.pgpass"
    esc = lambda s: s.replace("\\", "\\\\").replace(":", "\\:")  # noqa: E731
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(":".join(esc(str(x)) for x in (pg.host, pg.port, db, "berth", pg.password)) + "\n")
    return path


def pandas_pg_run(script: Path, model_py: Path, inbox: Path, url: str, method: str, pgpass: Path) -> dict:
    from _kit import clean_env
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(script), str(model_py), str(inbox), url, "1.0.0", method],
                            env=dict(clean_env(), PGPASSFILE=str(pgpass)), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read()
    proc.stdout.close()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the pandas PostgreSQL script failed:\n{out.decode(errors='replace')[-2000:]}")
    rows, seconds, rss = out.split()[-3:]
    return {"rows_in": int(rows), "seconds": float(seconds), "wall_s": wall, "peak_rss_kb": int(rss),
            "cpu_s": usage.ru_utime + usage.ru_stime}


def reset(pg, db: str) -> None:
    """A fresh output for each run: the job's tables and marks, and the script's table."""
    pg.psql("DROP TABLE IF EXISTS scores, scores_errors, berth_job_done, berth_job_watermark", db)


def count(pg, db: str) -> int:
    return int(pg.psql("SELECT count(*) FROM scores", db)[0][0])


def measure(base: Path, server, sources: list, model_py: Path, args, berth_run, fill, table) -> None:
    """args.repeat alternating runs of the job and of the script into PostgreSQL, then their table."""
    import shutil
    pg, why = start_postgres()
    if pg is None:
        print(f"\nPostgreSQL: not measured ({why})")
        return
    try:
        db = pg.new_db()
        url = pg.url(db)
        inbox = base / "inbox-pg"
        inbox.mkdir(parents=True, exist_ok=True)
        print(f"\nPostgreSQL 15 (tests/pg_kit.py, 127.0.0.1:{pg.port}, fsync off for both): adding the job "
              "(pip installs psycopg in the release's venv)...", flush=True)
        server.call("job_add", name="bench-pg", model="scorer", schedule={"every": "1d"}, tz="UTC",
                    input={"kind": "dir", "path": str(inbox), "pattern": "*.csv"},
                    output={"url": url, "table": "scores"}, version=None,
                    db_passwords=keyring_password(url, pg.password))
        script = base / "pandas_pg.py"
        script.write_text(PANDAS_PG_SCRIPT)
        pgpass = passfile(base, pg, db)
        samples: dict[str, list[dict]] = {"berth": [], "pandas": []}
        for i in range(args.repeat):
            fill(inbox, sources)
            reset(pg, db)
            run = berth_run(server, "bench-pg")
            assert run["rows_in"] == args.rows and count(pg, db) == args.rows, (run, count(pg, db))
            samples["berth"].append(run)
            ref_inbox = base / "ref-pg"
            shutil.rmtree(ref_inbox, ignore_errors=True)
            ref_inbox.mkdir()
            fill(ref_inbox, sources)
            reset(pg, db)
            ref = pandas_pg_run(script, model_py, ref_inbox, url, args.pg_method, pgpass)
            assert ref["rows_in"] == args.rows and count(pg, db) == args.rows, ref
            samples["pandas"].append(ref)
            if args.verbose:
                print(f"  run {i + 1} postgres: berth {args.rows / run['seconds']:,.0f} rows/s, pandas "
                      f"{args.rows / ref['seconds']:,.0f} rows/s", flush=True)
        server.call("job_remove", name="bench-pg")
        report(samples, args, table)
    finally:
        pg.stop()


def report(samples: dict, args, table) -> None:
    med = lambda side, key: statistics.median(r[key] for r in samples[side])  # noqa: E731
    ref_rate, ref_cpu = args.rows / med("pandas", "seconds"), args.rows / med("pandas", "cpu_s")
    rows = []
    for side, who in (("berth", "berth (job)"), ("pandas", f"pandas to_sql ({args.pg_method})")):
        rates = [args.rows / r["seconds"] for r in samples[side]]
        rate, cpu = statistics.median(rates), args.rows / med(side, "cpu_s")
        rows.append((who, f"{rate:,.0f}", f"{min(rates):,.0f}-{max(rates):,.0f}",
                     f"{args.rows / med(side, 'wall_s'):,.0f}", f"{cpu:,.0f}", f"{rate / ref_rate:.2f}x",
                     f"{cpu / ref_cpu:.2f}x", f"{med(side, 'peak_rss_kb') / 1024:.0f} MB"))
    print(table(rows, ("into PostgreSQL", "rows/s", "min-max", "rows/s wall", "rows/CPU-s", "vs pandas",
                       "CPU vs pandas", "peak RSS")))
    print("(predict_batch model; CPU: the job process / the script only, not the PostgreSQL server's); load "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
