"""A job's inputs, as batches: an inbox folder (one file, one batch) or a SQLite query with a
watermark column. Each batch carries the mark its output commits with the results (the file's
sha256, or the new watermark), which is what makes a batch count exactly once. A PostgreSQL source
is another class with the same `batches(output)`."""
import csv
import errno
import fnmatch
import hashlib
import io
import itertools
import json
import os
import re
import sqlite3
import stat

from .layout import AgentError

IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
CSV_NAMES = (".csv",)
JSON_NAMES = (".jsonl", ".ndjson", ".json")
SQL_BATCH = 5000
# a file is one batch, in memory: a CSV takes about 30 times its size in Python objects (16 MB of
# numbers and short text: 470 MB), so a bigger file is refused (failed/) rather than the server's memory
MAX_FILE_BYTES = 64 * 1024 * 1024


class Batch:
    """`items`: [(input_ref, value)]; `bad`: [(input_ref, reason, raw)] found while reading;
    `mark`: the key committed with its rows; `done()` runs after that commit."""

    def __init__(self, ref, items, bad, mark, done=None, watermark=None):
        self.ref, self.items, self.bad, self.mark = ref, items, bad, mark
        self.done = done or (lambda: None)
        self.watermark = watermark


class Unreadable(Exception):
    pass


def number(text):
    """CSV cells: integers and decimals become numbers, an empty cell None, the rest stays text
    ("1_000", "inf" and "nan", which int() and float() would take, stay text)."""
    if not text:
        return None
    s = text.strip()
    if not s or not (s[0].isdigit() or s[0] in "-+.") or not (s[-1].isdigit() or s[-1] == ".") or "_" in s:
        return text
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return text


# a cell number() may not leave as text: empty, or starting with a space, a decimal digit, a sign or a point
MAYBE_NUMBER = re.compile(r"(?m)^(?:$|[\s\d+\-.])")
INT_CHARS = frozenset("0123456789+-\n")
DECIMAL_CHARS = frozenset("0123456789+-.eE\n")


def column(values):
    """number() over a column's cells, with the usual columns done in C: cells of digits and signs
    that int() takes are what number() makes ints of; cells of digits, signs, exponents and exactly
    one point each that float() takes, what it makes floats of; text whose cells all start with
    something else than a space, a digit, a sign or a point stays as it is. The rest: number(), cell by cell."""
    joined = "\n".join(values)
    if not values or values[0][:1] not in tuple("0123456789+-."):  # a text column, most likely
        return list(values) if MAYBE_NUMBER.search(joined) is None else list(map(number, values))
    if joined.count("\n") == len(values) - 1:  # no cell holds a line break
        chars = set(joined)
        try:
            if chars <= INT_CHARS:
                return list(map(int, values))
            if chars <= DECIMAL_CHARS and joined.count(".") == len(values):
                return list(map(float, values))  # float() refuses a cell with two points
        except ValueError:  # "", "+", "1-2", an integer too long for int(): number() decides
            pass
    return list(map(number, values))


def read_csv(data, name):
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise Unreadable("not UTF-8 text (byte %d)" % e.start)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise Unreadable("no header row")
        rows, lines, bad, width = [], [], [], len(header)
        for row in reader:
            if len(row) == width:
                rows.append(row)
                lines.append(reader.line_num)
            elif row:
                bad.append(("%s:%d" % (name, reader.line_num),
                            "the row has %d fields, the header %d" % (len(row), width), ",".join(row)))
    except csv.Error as e:
        raise Unreadable("not CSV: %s" % e)
    # column by column, then back to one object per row: few Python-level calls per cell
    columns = [column(c) for c in zip(*rows)]
    refs = map((name.replace("%", "%%") + ":%d").__mod__, lines)
    return list(zip(refs, map(dict, map(zip, itertools.repeat(header), zip(*columns))))), bad


def read_json_lines(data, name):
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise Unreadable("not UTF-8 text (byte %d)" % e.start)
    items, bad = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        ref = "%s:%d" % (name, n)
        try:
            items.append((ref, json.loads(line)))
        except ValueError as e:
            bad.append((ref, "not JSON: %s" % e, line))
    return items, bad


def _file_or_link(path):
    """A regular file, or a symlink (which goes to failed/ with its reason); a FIFO, a socket or a
    folder in the inbox is left alone."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) or stat.S_ISLNK(mode)


def read_regular(path):
    """The bytes of a regular file, never through a symlink (whoever may write to the inbox must not
    make the job read the agent's own files into the output), and never blocking on a FIFO swapped in."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Unreadable("a symbolic link: links in the inbox are not followed; copy the file in instead")
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Unreadable("not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise Unreadable("%.1f MB, more than the %d MB a file (one batch, read into memory) may be: split it" % (
                st.st_size / 2.0 ** 20, MAX_FILE_BYTES // 2 ** 20))
        return f.read(MAX_FILE_BYTES + 1)


class DirInput:
    def __init__(self, spec, clock):
        self.path, self.pattern, self.clock = spec["path"], spec.get("pattern") or "*", clock
        self.done_dir = os.path.join(self.path, "done")
        self.failed_dir = os.path.join(self.path, "failed")
        self.failed = []  # (file, reason) of this run

    def files(self):
        try:
            names = sorted(os.listdir(self.path))
        except OSError as e:
            raise AgentError("cannot read the input folder %s: %s" % (self.path, e.strerror), "bad_input")
        return [n for n in names if not n.startswith(".") and fnmatch.fnmatchcase(n, self.pattern)
                and _file_or_link(os.path.join(self.path, n))]

    def batches(self, output):
        for name in self.files():
            path = os.path.join(self.path, name)
            try:
                data = read_regular(path)
            except Unreadable as e:
                self._fail(name, str(e))
                continue
            except FileNotFoundError:  # taken away since the folder was listed
                continue
            except OSError as e:
                self._fail(name, "cannot read it: %s" % e.strerror)
                continue
            sha = hashlib.sha256(data).hexdigest()
            mark = "file:%s" % sha
            done = (lambda n=name, s=sha: self._move(n, self.done_dir, s))
            if output.is_done(mark):  # committed by a run that died before moving it
                done()
                continue
            try:
                if name.lower().endswith(CSV_NAMES):
                    items, bad = read_csv(data, name)
                elif name.lower().endswith(JSON_NAMES):
                    items, bad = read_json_lines(data, name)
                else:
                    raise Unreadable("neither CSV (.csv) nor JSON lines (.jsonl, .ndjson, .json)")
            except Unreadable as e:
                self._fail(name, str(e))
                continue
            yield Batch(name, items, bad, mark, done)

    def _move(self, name, folder, sha):
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, name)
        if os.path.exists(target):
            base, ext = os.path.splitext(name)
            target = os.path.join(folder, "%s.%s%s" % (base, sha[:12], ext))
        try:
            os.replace(os.path.join(self.path, name), target)
        except FileNotFoundError:  # renamed or removed while the run read it: its rows are in, once
            return None
        t = self.clock().timestamp()
        os.utime(target, (t, t))  # done/ is pruned by when a file was processed, not written
        return target

    def _fail(self, name, reason):
        self.failed.append((name, reason))
        target = self._move(name, self.failed_dir, hashlib.sha256(name.encode()).hexdigest())
        if target is None:
            return
        with open(target + ".reason.txt", "w") as f:
            f.write(reason + "\n")

    def prune_done(self, keep_days):
        """Files processed more than `keep_days` ago leave done/ (and failed/): the disk stays bounded."""
        limit = self.clock().timestamp() - keep_days * 86400
        removed = 0
        for folder in (self.done_dir, self.failed_dir):
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for n in names:
                p = os.path.join(folder, n)
                try:
                    if os.path.getmtime(p) < limit:
                        os.unlink(p)
                        removed += 1
                except OSError:
                    pass
        return removed


def sqlite_path(url, what):
    """sqlite:///ABSOLUTE/PATH.db -> /ABSOLUTE/PATH.db"""
    if not isinstance(url, str) or not url.startswith("sqlite:///") or len(url) <= len("sqlite:///"):
        raise AgentError("%s %r: expected sqlite:///ABSOLUTE/PATH.db" % (what, url), "bad_" + what.split()[0])
    return "/" + url[len("sqlite:///"):].lstrip("/")


# string literals, quoted names and comments, SQLite's and PostgreSQL's ($tag$...$tag$); E'' escapes
# are not read, so a \' in one leaves a quote over and the query is refused, never misread
QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|--[^\n]*|/\*.*?\*/|\$([A-Za-z_]\w*|)\$.*?\$\1\$", re.S)


def check_select(sql):
    """One SELECT (or WITH) that stays inside the parentheses it is run in (`SELECT * FROM (query)
    WHERE watermark > ?`): a `)` of its own, or a comment or string left open, would take the
    watermark's filter off part or all of it, and every run would take those rows again."""
    if not isinstance(sql, str) or not sql.strip():
        raise AgentError("the input query is empty", "bad_input")
    body = sql.strip().rstrip(";").strip()
    bare = QUOTED.sub(" ", body)
    if ";" in bare or not re.match(r"(?is)\s*(select|with)\b", bare):
        raise AgentError("the input query must be one SELECT statement", "bad_input")
    if re.search(r"['\"`]|/\*|\$([A-Za-z_]\w*)?\$", bare):
        raise AgentError("the input query has a string, a quoted name or a comment that is not closed", "bad_input")
    depth = 0
    for ch in bare:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            break
    if depth:
        raise AgentError("the input query's parentheses do not match (it is run as SELECT * FROM (query) WHERE ...)",
                         "bad_input")
    return body + "\n"  # a -- comment at its end stays inside the parentheses


class QuerySource:
    """What a SQLite and a PostgreSQL source share: one SELECT, a plain watermark column."""

    def __init__(self, spec):
        self.sql = check_select(spec["sql"])
        self.watermark = spec["watermark"]
        if not IDENT_RE.fullmatch(self.watermark or ""):
            raise AgentError("watermark %r is not a plain column name" % (self.watermark,), "bad_input")
        self.failed = []

    def has_watermark(self, columns):
        """At job add: the query's columns (from a LIMIT 0 run) include the watermark."""
        if self.watermark not in columns:
            raise AgentError("the input query has no column %s (it returns %s)" % (self.watermark, ", ".join(columns)),
                             "bad_input")


class SqliteInput(QuerySource):
    def __init__(self, spec):
        self.path = sqlite_path(spec["url"], "input url")
        QuerySource.__init__(self, spec)

    def connect(self):
        if not os.path.isfile(self.path):
            raise AgentError("the input database %s does not exist on the server" % self.path, "bad_input")
        return sqlite3.connect("file:%s?mode=ro" % self.path.replace("?", "%3f").replace("#", "%23"), uri=True)

    def check(self):
        """At job add: the query runs, and returns the watermark column."""
        conn = self.connect()
        try:
            cur = conn.execute("SELECT * FROM (%s) LIMIT 0" % self.sql)
            columns = [d[0] for d in cur.description]
        except sqlite3.Error as e:
            raise AgentError("the input query fails on %s: %s" % (self.path, e), "bad_input")
        finally:
            conn.close()
        self.has_watermark(columns)

    def batches(self, output):
        """Rows newer than the committed watermark, in watermark order; a batch never ends between two
        rows of the same watermark value, so the next run's `> watermark` loses none."""
        last = output.watermark()
        conn = self.connect()
        try:
            q = 'SELECT * FROM (%s) WHERE "%s" > ? ORDER BY "%s"' % (self.sql, self.watermark, self.watermark) \
                if last is not None else 'SELECT * FROM (%s) WHERE "%s" IS NOT NULL ORDER BY "%s"' % (
                    self.sql, self.watermark, self.watermark)
            cur = conn.execute(q, (last,) if last is not None else ())
            columns = [d[0] for d in cur.description]
            wm = columns.index(self.watermark)
            key = columns[0]
            for chunk in watermark_chunks(lambda: cur.fetchmany(SQL_BATCH), wm):
                yield watermark_batch(chunk, columns, key, wm)
        finally:
            conn.close()



def watermark_batch(rows, columns, key, wm):
    """One batch of a query's rows (a SQLite or PostgreSQL source): each row's input_ref names its first
    column's value and its watermark; the batch carries the highest watermark, committed with it."""
    name = columns[wm]
    items = []
    for r in rows:
        ref = "%s=%s" % (key, r[0]) if key == name else "%s=%s,%s=%s" % (key, r[0], name, r[wm])
        items.append((ref, dict(zip(columns, r))))
    top = rows[-1][wm]
    return Batch("%s..%s" % (rows[0][wm], top), items, [], None, watermark=top)


def watermark_chunks(fetch, wm):
    """Lists of rows from `fetch()` (rows in watermark order, [] at the end) of about SQL_BATCH rows;
    a chunk never ends between two rows of the same watermark value, so the next run's `> watermark`
    loses none."""
    pending = []
    while True:
        rows = fetch()
        pending.extend(rows)
        if not rows or len(pending) > SQL_BATCH:
            cut = len(pending)
            if rows:  # keep the rows of the last value for the next chunk
                while cut > 0 and pending[cut - 1][wm] == pending[-1][wm]:
                    cut -= 1
                if cut == 0:
                    continue
            chunk, pending = pending[:cut], pending[cut:]
            if chunk:
                yield chunk
            if not rows:
                return


def open_input(spec, clock):
    if spec.get("kind") == "dir":
        return DirInput(spec, clock)
    if spec.get("kind") == "db":
        if str(spec.get("url", "")).startswith("postgresql://"):
            raise AgentError("a PostgreSQL input is read by the job process (jobio.open_input)", "bad_input")
        return SqliteInput(spec)
    raise AgentError("input kind %r: expected dir or db" % (spec.get("kind"),), "bad_input")
