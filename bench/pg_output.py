"""Rows per second into PostgreSQL through a job's output (PostgresOutput.commit: COPY), beside the
same batches written by executemany in pipeline mode, on a throwaway PostgreSQL 15 (tests/pg_kit.py).

    python bench/pg_output.py --venv-python /path/to/venv/bin/python [--rows 100000] [--batch 5000]

The venv needs psycopg 3 (`pip install "psycopg[binary]"`); this process needs the test extra."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

INNER = r'''
import json, sys, time
from app.agent.jobio import open_output
from app.agent.jobinputs import Batch
from app.agent.jobsqlite import FIXED, q

url, total, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def batches(table):
    for start in range(0, total, size):
        n = min(size, total - start)
        yield Batch("b", [], [], "%s-%d" % (table, start)), [("f.csv:%d" % (start + i), {"y": (start + i) * 2, "score": 0.5, "label": "ok"}) for i in range(n)]

def copy(table):
    out = open_output({"url": url, "table": table}, "bench")
    t, c = time.perf_counter(), time.process_time()
    for batch, results in batches(table):
        out.commit(batch, results, [], "run", "1.0.0", "2026-01-01T00:00:00+00:00")
    s = (time.perf_counter() - t, time.process_time() - c)
    out.close()
    return s

def pipeline(table):
    out = open_output({"url": url, "table": table}, "bench")
    out.commit(Batch("b", [], [], None), [("f:0", {"y": 0, "score": 0.5, "label": "ok"})], [], "r", "1", "2026-01-01T00:00:00+00:00")
    conn = out.conn
    cols = ", ".join(q(n) for n in FIXED + ("y", "score", "label"))
    t, c = time.perf_counter(), time.process_time()
    for batch, results in batches(table):
        with conn.transaction():
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO %s (%s) VALUES (%%s, %%s, %%s, %%s, %%s, %%s, %%s)" % (q(table), cols),
                                [("run", "1.0.0", ref, "2026-01-01T00:00:00+00:00", o["y"], o["score"], o["label"]) for ref, o in results])
                cur.execute("INSERT INTO berth_job_done VALUES (%s, %s, %s, %s)", ("bench", batch.mark, "run", "2026-01-01T00:00:00+00:00"))
    s = (time.perf_counter() - t, time.process_time() - c)
    out.close()
    return s

print(json.dumps({"copy": copy("via_copy"), "executemany_pipeline": pipeline("via_pipeline")}))
'''


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--venv-python", required=True)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=5000)
    args = p.parse_args()
    from pg_kit import PgServer
    from app.agent.pgurl import parse, write_passfile

    pg = PgServer()
    try:
        db = pg.new_db()
        with tempfile.TemporaryDirectory() as tmp:
            passfile = write_passfile(os.path.join(tmp, "pgpass"), [(parse(pg.url(db)), pg.password)])
            env = dict(os.environ, PYTHONPATH=str(REPO), PGPASSFILE=passfile)
            out = subprocess.run([args.venv_python, "-c", INNER, pg.url(db), str(args.rows), str(args.batch)],
                                 env=env, capture_output=True, text=True, check=True).stdout
        seconds = json.loads(out)
        for way, (s, cpu) in seconds.items():
            print(f"{way:22s} {args.rows} rows in {s:.2f} s: {args.rows / s:,.0f} rows/s "
                  f"(the job process's CPU: {cpu:.2f} s; the machine's load shows in the difference)")
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
