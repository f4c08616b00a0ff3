"""A job's PostgreSQL output and source, beside SqliteOutput / SqliteInput with the same methods.
Only the job process (the release's virtualenv python, where Berth installs psycopg 3) and the
check it runs at `job add` (`python -m berth_agent.jobpostgres`, JSON on stdin) import this: the
agent and the scheduler stay stdlib-only. The password is never in the conninfo: libpq reads it
from the passfile PGPASSFILE names; psycopg's messages are still scrubbed and cut to one line.

Typing of result columns: a new key's column takes the type of its first non-null value (bool ->
boolean, int -> bigint, float -> double precision, str -> text, object or list -> jsonb; a key whose
values are all null so far -> text). A later value that does not fit widens the column:
bigint -> double precision for a float, anything else -> text (the value's JSON text)."""
import datetime
import decimal
import json
import sys
import uuid

from .jobinputs import SQL_BATCH, QuerySource, watermark_batch, watermark_chunks
from .jobsqlite import FIXED, check_table, column_name, q
from .layout import AgentError
from . import pgurl

TYPES = {"bool": "boolean", "int": "bigint", "float": "double precision", "text": "text", "json": "jsonb"}
KIND_OF_TYPE = {v: k for k, v in TYPES.items()}
MARKS = (
    "CREATE TABLE IF NOT EXISTS berth_job_done (job text NOT NULL, mark text NOT NULL, run_id text, "
    "time timestamptz, PRIMARY KEY (job, mark))",
    "CREATE TABLE IF NOT EXISTS berth_job_watermark (job text PRIMARY KEY, value jsonb, run_id text, time timestamptz)",
)


def _driver():
    try:
        import psycopg  # in the release's virtualenv only (pgdriver.py installs it)
    except ImportError:
        raise AgentError("the PostgreSQL driver (psycopg) is not installed in the release's virtualenv", "no_driver")
    return psycopg


def one_line(error, secret=None):
    """psycopg's message, one line, the password (if it ever echoed) replaced by ***."""
    text = " ".join(str(error).split()) or type(error).__name__
    if secret:
        text = text.replace(secret, "***")
    return pgurl.redact(text)


def connect(url, what, read_only=False):
    c = pgurl.parse(url, what)
    psycopg = _driver()
    try:
        conn = psycopg.connect(host=c["host"], port=c["port"], dbname=c["dbname"], user=c["user"],
                               connect_timeout=10, application_name="berth-job", autocommit=True,
                               options="-c TimeZone=UTC")
    except psycopg.Error as e:
        raise AgentError("cannot connect to %s: %s" % (pgurl.canonical(url, what), one_line(e)), "bad_" + what) \
            from None
    if read_only:
        conn.read_only = True
    return conn


def kind(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "text"
    return None if value is None else "json"


def widen(a, b):
    if a is None or a == b:
        return b
    if b is None:
        return a
    return "float" if {a, b} == {"int", "float"} else "text"


def cell(value, k):
    """The value as the column of kind `k` stores it (text COPY)."""
    if value is None:
        return None
    if k == "json":
        return json.dumps(value)
    if k == "text" and not isinstance(value, str):
        return json.dumps(value)
    return value


class PostgresOutput:
    def __init__(self, url, table, job, readonly=False):
        self.url, self.table, self.job = pgurl.canonical(url, "output"), check_table(table), job
        self.psycopg = _driver()
        self.conn = connect(url, "output", read_only=readonly)
        if not readonly:
            self._ddl(MARKS + (
                "CREATE TABLE IF NOT EXISTS %s (run_id text, model_version text, input_ref text, time timestamptz)"
                % q(table),
                "CREATE TABLE IF NOT EXISTS %s (run_id text, model_version text, input_ref text, time timestamptz, "
                "reason text, raw text)" % q(table + "_errors")))
        self.columns = self._columns(table)

    def _ddl(self, statements):
        try:
            with self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('berth_job_ddl'))")  # two jobs, one schema
                for s in statements:
                    self.conn.execute(s)
        except self.psycopg.Error as e:
            raise AgentError("the output %s cannot be written: %s" % (self.url, one_line(e)), "bad_output") from None

    def _columns(self, table):
        cur = self.conn.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
                                "AND table_schema = current_schema() ORDER BY ordinal_position", (table,))
        return {name: KIND_OF_TYPE.get(t, "text") for name, t in cur.fetchall()}

    def is_done(self, mark):
        return self.conn.execute("SELECT 1 FROM berth_job_done WHERE job = %s AND mark = %s",
                                 (self.job, mark)).fetchone() is not None

    def watermark(self):
        row = self.conn.execute("SELECT value FROM berth_job_watermark WHERE job = %s", (self.job,)).fetchone()
        return row[0] if row else None

    def commit(self, batch, results, errors, run_id, version, when):
        """results: [(input_ref, output)]; errors: [(input_ref, reason, raw)]. One transaction, rows by COPY."""
        rows = [_cells(out) for _ref, out in results]
        kinds = {}
        for cells in rows:
            for k, v in cells.items():
                kinds[k] = widen(kinds.get(k), kind(v))
        try:
            with self.conn.transaction():
                self._fit(kinds)
                names = list(kinds)
                cols = [self.columns[n] for n in names]
                with self.conn.cursor() as cur:
                    with cur.copy("COPY %s (%s) FROM STDIN" % (q(self.table), ", ".join(q(n) for n in FIXED + tuple(names)))) as cp:
                        for (ref, _o), cells in zip(results, rows):
                            cp.write_row([run_id, version, ref, when] + [cell(cells.get(n), k) for n, k in zip(names, cols)])
                    if errors:
                        with cur.copy("COPY %s FROM STDIN" % q(self.table + "_errors")) as cp:
                            for ref, reason, raw in errors:
                                cp.write_row((run_id, version, ref, when, reason, raw))
                    if batch.mark is not None:
                        cur.execute("INSERT INTO berth_job_done VALUES (%s, %s, %s, %s)", (self.job, batch.mark, run_id, when))
                    if batch.watermark is not None:
                        cur.execute("INSERT INTO berth_job_watermark VALUES (%s, %s, %s, %s) ON CONFLICT (job) DO UPDATE "
                                    "SET value = EXCLUDED.value, run_id = EXCLUDED.run_id, time = EXCLUDED.time",
                                    (self.job, json.dumps(batch.watermark), run_id, when))
        except self.psycopg.Error as e:
            self.columns = self._columns(self.table)  # a rolled back ALTER is gone again
            raise AgentError("writing to %s failed: %s" % (self.url, one_line(e)), "output_failed") from None

    def _fit(self, kinds):
        """New keys become columns; a column a value does not fit is widened (module docstring)."""
        for name, k in kinds.items():
            have = self.columns.get(name, "missing")
            if have == "missing":
                self.conn.execute("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s" % (q(self.table), q(name), TYPES[k or "text"]))
                self.columns = self._columns(self.table)
            elif k is not None and widen(have, k) != have:
                to = widen(have, k)
                using = "%s::%s" % (q(name), TYPES[to])
                if to == "text" and have != "json":  # 5 -> '5', true -> 'true': the value's JSON text
                    using = "to_jsonb(%s) #>> '{}'" % q(name)
                self.conn.execute("ALTER TABLE %s ALTER COLUMN %s TYPE %s USING %s" % (q(self.table), q(name), TYPES[to], using))
                self.columns[name] = to

    def preview(self, limit=20):
        """The latest result and error rows (newest first), read only."""
        return dict(_preview(self.conn, self.table, limit), errors=_preview(self.conn, self.table + "_errors", limit))

    def close(self):
        self.conn.close()


def _preview(conn, table, limit):
    exists = conn.execute("SELECT to_regclass(%s)", (q(table),)).fetchone()[0]
    if exists is None:
        return {"columns": [], "rows": []}
    cur = conn.execute("SELECT * FROM %s ORDER BY time DESC NULLS LAST LIMIT %%s" % q(table), (int(limit),))
    return {"columns": [d.name for d in cur.description], "rows": [[plain(v) for v in r] for r in cur.fetchall()]}


def _cells(output):
    if not isinstance(output, dict):
        return {"output": output if isinstance(output, (dict, list)) else json.dumps(output)}
    return {column_name(k): v for k, v in output.items()}


def plain(value):
    """A source or preview value as JSON has it: times as ISO text, decimals as numbers."""
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2 ** 63 else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    return str(value)


class PostgresInput(QuerySource):
    """One SELECT on a PostgreSQL source, in a read-only transaction, streamed by a server-side cursor;
    the watermark semantics of SqliteInput (docs/jobs.md)."""

    def __init__(self, spec):
        self.url = pgurl.canonical(spec["url"], "input")
        QuerySource.__init__(self, spec)

    def check(self):
        conn = connect(self.url, "input", read_only=True)
        psycopg = _driver()
        try:
            with conn.transaction():
                cur = conn.execute("SELECT * FROM (%s) AS berth_source LIMIT 0" % self.sql)
                columns = [d.name for d in cur.description]
        except psycopg.Error as e:
            raise AgentError("the input query fails on %s: %s" % (self.url, one_line(e)), "bad_input") from None
        finally:
            conn.close()
        self.has_watermark(columns)

    def batches(self, output):
        last = output.watermark()
        conn = connect(self.url, "input", read_only=True)
        psycopg = _driver()
        w, body = q(self.watermark), self.sql.replace("%", "%%")  # params given: psycopg reads % in the query
        sql = "SELECT * FROM (%s) AS berth_source WHERE %s > %%s ORDER BY %s" % (body, w, w) if last is not None \
            else "SELECT * FROM (%s) AS berth_source WHERE %s IS NOT NULL ORDER BY %s" % (body, w, w)
        try:
            with conn.transaction():
                with conn.cursor(name="berth_source") as cur:
                    cur.execute(sql, (last,) if last is not None else ())
                    columns = [d.name for d in cur.description]
                    wm, key = columns.index(self.watermark), columns[0]
                    for chunk in watermark_chunks(lambda: [tuple(plain(v) for v in r) for r in cur.fetchmany(SQL_BATCH)], wm):
                        yield watermark_batch(chunk, columns, key, wm)
        except psycopg.Error as e:
            raise AgentError("reading %s failed: %s" % (self.url, one_line(e)), "input_failed") from None
        finally:
            conn.close()



def check(request):
    """At job add, in the release's virtualenv: the output can be written (nothing created), the source
    query runs and has the watermark column."""
    out = request.get("output")
    if out:
        conn = connect(out["url"], "output")
        try:
            row = conn.execute("SELECT has_schema_privilege(current_schema(), 'CREATE'), to_regclass(%s) IS NOT NULL "
                               "AND has_table_privilege(to_regclass(%s), 'INSERT')", (q(out["table"]), q(out["table"]))).fetchone()
        finally:
            conn.close()
        if not (row[0] or row[1]):
            raise AgentError("the user of %s can neither create the table %s nor insert into it"
                             % (pgurl.canonical(out["url"]), out["table"]), "bad_output")
    if request.get("input"):
        PostgresInput(request["input"]).check()
    return {"ok": True}


def main():
    """`python -m berth_agent.jobpostgres`: check(JSON on stdin) -> one JSON line on stdout (the
    preview is read by jobpreview.py, in the same virtualenv)."""
    try:
        request = json.loads(sys.stdin.read())
        answer = check(request)
    except AgentError as e:
        answer = {"error": str(e), "code": e.code}
    except Exception as e:  # a broken driver install, say: still one line for the operator
        answer = {"error": "%s: %s" % (type(e).__name__, one_line(e)), "code": "bad_output"}
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
