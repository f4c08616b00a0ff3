"""A job's output in a SQLite file on the server: the results table, `<table>_errors`, and the marks
that make each batch count once (berth_job_done: file hashes; berth_job_watermark). A batch's rows,
its errors and its mark commit in one transaction; PostgresOutput (jobpostgres.py) has the same
methods (is_done, watermark, commit, preview, close); jobio.py picks one by the URL's scheme."""
import json
import os
import re
import sqlite3
from itertools import chain, repeat
from operator import itemgetter

from .jobinputs import sqlite_path
from .layout import AgentError

TABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
FIXED = ("run_id", "model_version", "input_ref", "time")
MARKS = """
CREATE TABLE IF NOT EXISTS berth_job_done (job TEXT NOT NULL, mark TEXT NOT NULL, run_id TEXT, time TEXT,
                                           PRIMARY KEY (job, mark));
CREATE TABLE IF NOT EXISTS berth_job_watermark (job TEXT PRIMARY KEY, value, run_id TEXT, time TEXT);
"""


def check_table(table):
    if not isinstance(table, str) or not TABLE_RE.fullmatch(table) or table.lower().startswith(("sqlite_", "berth_job_")):
        raise AgentError("table %r is not a plain identifier (letters, digits and _, not starting with a digit, "
                         "sqlite_ or berth_job_)" % (table,), "bad_table")
    return table


def q(name):
    return '"%s"' % name.replace('"', '""')


def check_output(url, table):
    """At job add: the output can be written, created nothing."""
    check_table(table)
    path = sqlite_path(url, "output url")
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise AgentError("the output's folder %s does not exist on the server" % folder, "bad_output")
    if os.path.exists(path):
        try:
            conn = sqlite3.connect("file:%s?mode=rw" % path.replace("?", "%3f").replace("#", "%23"), uri=True)
            try:
                conn.execute("PRAGMA schema_version").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as e:
            raise AgentError("the output %s is not a SQLite database the job can write: %s" % (path, e), "bad_output")
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise AgentError("the job cannot create %s: its folder is not writable" % path, "bad_output")
    return path


class SqliteOutput:
    def __init__(self, url, table, job, readonly=False):
        if readonly:  # for preview(): opened read-only, nothing created (a missing file stays missing)
            self.path, self.table, self.job = sqlite_path(url, "output url"), check_table(table), job
            self.conn = _open_readonly(self.path)
            return
        self.path, self.table, self.job = check_output(url, table), table, job
        self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(MARKS)
        self.conn.execute("CREATE TABLE IF NOT EXISTS %s (run_id TEXT, model_version TEXT, input_ref TEXT, time TEXT)"
                          % q(table))
        self.conn.execute("CREATE TABLE IF NOT EXISTS %s (run_id TEXT, model_version TEXT, input_ref TEXT, time TEXT, "
                          "reason TEXT, raw TEXT)" % q(table + "_errors"))
        self.columns = self._columns()

    def _columns(self):
        return [r[1] for r in self.conn.execute("PRAGMA table_info(%s)" % q(self.table))]

    def is_done(self, mark):
        return self.conn.execute("SELECT 1 FROM berth_job_done WHERE job = ? AND mark = ?", (self.job, mark)).fetchone() \
            is not None

    def watermark(self):
        row = self.conn.execute("SELECT value FROM berth_job_watermark WHERE job = ?", (self.job,)).fetchone()
        return row[0] if row else None

    def commit(self, batch, results, errors, run_id, version, when):
        """results: [(input_ref, output)]; errors: [(input_ref, reason, raw)]. One transaction."""
        names, values = _columns_of(results)
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            for name in names:
                if name not in self.columns:
                    c.execute("ALTER TABLE %s ADD COLUMN %s" % (q(self.table), q(name)))
                    self.columns.append(name)
            cols = list(FIXED) + names
            c.executemany("INSERT INTO %s (%s) VALUES (%s)" % (q(self.table), ", ".join(q(n) for n in cols),
                                                              ", ".join("?" * len(cols))),
                          zip(repeat(run_id), repeat(version), map(itemgetter(0), results), repeat(when), *values))
            c.executemany("INSERT INTO %s VALUES (?, ?, ?, ?, ?, ?)" % q(self.table + "_errors"),
                          [(run_id, version, ref, when, reason, raw) for ref, reason, raw in errors])
            if batch.mark is not None:
                c.execute("INSERT INTO berth_job_done VALUES (?, ?, ?, ?)", (self.job, batch.mark, run_id, when))
            if batch.watermark is not None:
                c.execute("INSERT OR REPLACE INTO berth_job_watermark VALUES (?, ?, ?, ?)",
                          (self.job, batch.watermark, run_id, when))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def preview(self, limit):
        """The latest `limit` result rows and error rows, newest first:
        {"columns", "rows", "errors": {"columns", "rows"}}; a missing file or table gives empty lists."""
        results = self._latest(self.table, limit)
        errors = self._latest(self.table + "_errors", limit)
        return {"columns": results[0], "rows": results[1], "errors": {"columns": errors[0], "rows": errors[1]}}

    def _latest(self, table, limit):
        if self.conn is None:
            return [], []
        try:
            cur = self.conn.execute("SELECT * FROM %s ORDER BY rowid DESC LIMIT ?" % q(table), (int(limit),))
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return [], []
            raise
        return [d[0] for d in cur.description], [list(r) for r in cur.fetchall()]

    def close(self):
        if self.conn is not None:
            self.conn.close()


def _open_readonly(path):
    if not os.path.isfile(path):
        return None
    try:
        uri = "file:%s?mode=ro" % path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
        conn = sqlite3.connect(uri, uri=True, timeout=10)
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as e:
        raise AgentError("the output %s cannot be read as SQLite: %s" % (path, e), "bad_output")
    return conn


def _columns_of(results):
    """(column names, the values of each column) of the results' outputs. A batch of objects with the
    same keys and plain values (the usual one) is taken a column at a time, with no per-row calls."""
    outs = list(map(itemgetter(1), results))
    if outs and set(map(type, outs)) == {dict}:
        keys = tuple(outs[0])
        names = list(_cells(outs[0]))
        if len(names) == len(keys) and all(map(keys.__eq__, map(tuple, outs))) and set(
                map(type, chain.from_iterable(map(dict.values, outs)))) <= PLAIN:
            return names, [list(map(itemgetter(k), outs)) for k in keys]
    rows = [_cells(out) for out in outs]
    names = []
    for cells in rows:
        for k in cells:
            if k not in names:
                names.append(k)
    return names, [[cells.get(n) for cells in rows] for n in names]


PLAIN = {str, int, float, bool, type(None)}


def _cells(output):
    """One column per key of an object (keys that clash with Berth's own columns get `output_`);
    anything else in one JSON column `output`. Nested values are stored as JSON text."""
    if not isinstance(output, dict):
        return {"output": json.dumps(output)}
    return {column_name(k): json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in output.items()}


def column_name(key):
    """An output key's column: keys named like Berth's own columns get `output_`."""
    name = _NAMES.get(key)
    if name is None:
        name = str(key)
        name = _NAMES[key] = "output_" + name if name.lower() in FIXED else name
    return name


_NAMES = {}  # output key -> its column (few keys, many rows)
