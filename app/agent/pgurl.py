"""A job's PostgreSQL URL (`postgresql://user@host:port/db`) and its password's only home on the
server, a passfile in the standard PGPASSFILE format (`host:port:db:user:password`, `:` and `\\`
escaped, mode 0600). The URL never carries the password: it is stored in job.json, shown in
`job list` and journalled, so one written inside it is refused. Standard library only (the agent
reads this; the driver, psycopg, lives in the release's virtualenv)."""
import os
import re
import tempfile

from .layout import AgentError

SCHEMES = ("postgresql://", "postgres://")
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]+\]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,62}")
PASSFILE = "pgpass"  # in <root>/.berth


def is_pg(url):
    return isinstance(url, str) and url.startswith(SCHEMES)


def parse(url, what="output"):
    """{user, host, port, dbname} of `postgresql://user@host[:port]/db`, or one line saying what is wrong."""
    if not is_pg(url):
        raise AgentError("%s %r: expected postgresql://USER@HOST:PORT/DATABASE" % (what, url), "bad_" + what)
    rest = url.split("://", 1)[1]
    auth, sep, where = rest.rpartition("@")
    if ":" in auth:
        raise AgentError("%s has a password inside it: give the URL without it (postgresql://%s@%s); Berth keeps "
                         "the password in this computer's keyring (berth db-password URL)"
                         % (what, auth.split(":", 1)[0], where), "password_in_url")

    def wrong(why):
        return AgentError("%s %s: expected postgresql://USER@HOST:PORT/DATABASE (%s)" % (what, redact(url), why),
                          "bad_" + what)
    if "?" in rest or "#" in rest:
        raise wrong("no ?options")
    if not sep:
        raise wrong("the user is missing")
    hostport, slash, db = where.partition("/")
    host, port = hostport, "5432"
    m = re.fullmatch(r"(.*?):([0-9]{1,5})", hostport)
    if m:
        host, port = m.group(1), m.group(2)
    if not slash or not _NAME.fullmatch(db) or not _NAME.fullmatch(auth) or not _HOST.fullmatch(host) \
            or not 0 < int(port) < 65536:
        raise wrong("user and database: letters, digits, _ . -")
    return {"user": auth, "host": host.strip("[]"), "port": int(port), "dbname": db}


def canonical(url, what="output"):
    """The URL as the keyring and the passfile know it: the port always written."""
    c = parse(url, what)
    host = "[%s]" % c["host"] if ":" in c["host"] else c["host"]
    return "postgresql://%s@%s:%d/%s" % (c["user"], host, c["port"], c["dbname"])


def redact(url):
    """A URL fit for a message: a password inside it replaced by ***."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", str(url))


def _escape(text):
    return str(text).replace("\\", "\\\\").replace(":", "\\:")


def passfile_line(conn, password):
    if not isinstance(password, str) or not password or "\n" in password or "\r" in password or "\0" in password:
        raise AgentError("the database password must be one line of text", "bad_password")
    return ":".join(_escape(v) for v in (conn["host"], conn["port"], conn["dbname"], conn["user"], password))


def _key(line):
    """host:port:db:user of a passfile line (escapes kept): the entry a new password replaces."""
    parts, cur, i = [], "", 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            cur += line[i:i + 2]
            i += 2
            continue
        if ch == ":" and len(parts) < 4:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    return tuple(parts)


def write_passfile(path, entries, base=None):
    """Merge [(conn, password)] into the passfile at `path` (or at `base`, written to `path`): created
    0600, replaced atomically."""
    lines = []
    try:
        with open(base or path, encoding="utf-8") as f:
            lines = [l.rstrip("\n") for l in f if l.strip()]
    except FileNotFoundError:
        pass
    for conn, password in entries:
        new = passfile_line(conn, password)
        lines = [l for l in lines if _key(l) != _key(new)] + [new]
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".pgpass-", dir=folder)  # mkstemp: 0600 from the start
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(l + "\n" for l in lines))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def passfile_path(root):
    return os.path.join(root.meta, PASSFILE)
