"""A job's input and output by the URL's scheme: sqlite:/// (jobsqlite.py, jobinputs.py) or
postgresql:// (jobpostgres.py, imported only in the job process: it needs psycopg, which lives in
the release's virtualenv)."""
from . import pgurl
from .jobinputs import open_input as open_file_or_sqlite_input
from .jobsqlite import SqliteOutput, check_output as check_sqlite_output, check_table


def uses_postgres(job):
    """The canonical postgresql:// URLs a job definition (or a job_add request) reads or writes."""
    urls = []
    for part, what in ((job.get("input") or {}, "input"), (job.get("output") or {}, "output")):
        if isinstance(part, dict) and pgurl.is_pg(part.get("url")):
            urls.append(pgurl.canonical(part["url"], what))
    return urls


def check_output(url, table):
    """What the agent can check itself; a PostgreSQL output is checked further in the release's
    virtualenv (pgdriver.check), where the driver is."""
    if pgurl.is_pg(url):
        check_table(table)
        return pgurl.canonical(url, "output")
    return check_sqlite_output(url, table)


def open_input(spec, clock):
    if spec.get("kind") == "db" and pgurl.is_pg(spec.get("url")):
        from .jobpostgres import PostgresInput

        return PostgresInput(spec)
    return open_file_or_sqlite_input(spec, clock)


def open_output(spec, job, readonly=False):
    if pgurl.is_pg(spec.get("url")):
        from .jobpostgres import PostgresOutput

        return PostgresOutput(spec["url"], spec["table"], job, readonly=readonly)
    return SqliteOutput(spec["url"], spec["table"], job, readonly=readonly)
