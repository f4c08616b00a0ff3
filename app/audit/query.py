"""Reading the audit log for a view, the CLI and reports: filters, paging, counts, the values a
filter can take, and each event's state (a "started" event with no outcome is "interrupted", or
"in progress" while the process that started it still runs on this computer).

Newest first. The free-text filter matches any column (case-insensitive, literal: `%` and `_` are
not wildcards). Times are UTC ISO 8601 text, so ranges compare as text."""
from __future__ import annotations

import socket
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Iterator

from app.agent.runnerproc import pid_alive

from .event import FIELDS, STARTED
from .period import as_bound

if TYPE_CHECKING:  # loaded on first use: the window paints sooner
    import sqlite_utils


COLUMNS = ("id", "seq") + FIELDS + ("pid", "prev_hash", "hash")  # the chain data: an export can be re-checked
TEXT_COLUMNS = ("actor", "ssh_user", "server", "model", "version", "sha256", "action", "outcome", "old", "new",
                "reason", "detail")
# an outcome row points at its started row; a started row without one never finished
_CLOSED = "exists(select 1 from events o where o.ref = events.id and o.ref != '')"
INTERRUPTED = "interrupted"
RUNNING = "in progress"


@dataclass(frozen=True)
class AuditFilter:
    """Every field empty = everything. `since`/`until`: ISO dates or times (UTC), or `7d`/`24h`/`30m`
    ago; a bare date as `until` means the end of that day. `outcome` may be "interrupted"."""
    server: str = ""
    model: str = ""
    action: str = ""
    text: str = ""
    actor: str = ""
    since: str = ""
    until: str = ""
    outcome: str = ""

    def where(self) -> tuple[str | None, list]:
        clauses, args = [], []
        for column in ("server", "model"):
            value = getattr(self, column)
            if value:
                clauses.append(f"{column} = ?")
                args.append(value)
        if self.action:  # "deploy" also finds deploy's own kinds ("deploy.check"), not "deployx"
            clauses.append("(action = ? or action like ? escape '\\')")
            args += [self.action, _literal(self.action) + ".%"]
        if self.actor:  # "alice" finds alice@laptop; "alice@laptop" exactly that; also the SSH user
            clauses.append("(actor = ? or actor like ? escape '\\' or ssh_user = ?)")
            args += [self.actor, _literal(self.actor) + "@%", self.actor]
        if self.since:
            clauses.append("ts >= ?")
            args.append(as_bound(self.since, end=False))
        if self.until:
            clauses.append("ts <= ?")
            args.append(as_bound(self.until, end=True))
        if self.outcome == INTERRUPTED:
            clauses.append(f"outcome = '{STARTED}' and not {_CLOSED}")
        elif self.outcome:
            clauses.append("outcome = ?")
            args.append(self.outcome)
        text = self.text.strip()
        if text:
            pattern = "%" + _literal(text) + "%"
            clauses.append("(" + " or ".join(f"{c} like ? escape '\\'" for c in TEXT_COLUMNS) + ")")
            args.extend([pattern] * len(TEXT_COLUMNS))
        return (" and ".join(clauses) or None), args


    def describe(self) -> str:
        """One line for a report's title page and the CLI."""
        parts = [f"{f.name}={getattr(self, f.name)}" for f in fields(self) if getattr(self, f.name)]
        return ", ".join(parts) or "all events"

    def with_(self, **changes) -> AuditFilter:
        return replace(self, **changes)


def _literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


SELECT = ", ".join(COLUMNS) + f", case when outcome = '{STARTED}' then {_CLOSED} else 1 end as closed"


NEWEST_FIRST, OLDEST_FIRST = "ts desc, seq desc", "ts, seq"


def where_sql(flt: AuditFilter, extra: str = "", extra_args=()) -> tuple[str, list]:
    """(" where …", args) for the filter and one more clause (or ("", args) for everything): the one
    place a filter becomes SQL, for this module and the Audit view's random access (window.py)."""
    where, args = flt.where()
    clauses = [c for c in (where, extra) if c]
    return (" where " + " and ".join(clauses) if clauses else ""), list(args) + list(extra_args)


def select_events(db: sqlite_utils.Database, where: str = "", args=(), order: str = "", limit: int | None = None,
                  offset: int = 0) -> list[dict]:
    """Events read with SELECT (`where` from where_sql), each with its `state`."""
    sql = f"select {SELECT} from events{where}" + (f" order by {order}" if order else "")
    args = list(args)
    if limit is not None:
        sql += " limit ? offset ?"
        args += [limit, offset]
    return [with_state(r) for r in _dicts(db.execute(sql, args))]


def query_events(db: sqlite_utils.Database, flt: AuditFilter = AuditFilter(), limit: int = 500,
                 offset: int = 0, oldest_first: bool = False) -> list[dict]:
    """One page, newest first (or oldest first); each row has `state`: its outcome, or "interrupted"
    / "in progress"."""
    where, args = where_sql(flt)
    return select_events(db, where, args, OLDEST_FIRST if oldest_first else NEWEST_FIRST, limit, offset)


def iter_events(db: sqlite_utils.Database, flt: AuditFilter = AuditFilter(), batch: int = 5000) -> Iterator[dict]:
    """All matching events, oldest first, read in batches (exports of a million rows stay small)."""
    where, args = where_sql(flt)
    cursor = db.execute(f"select {SELECT} from events{where} order by {OLDEST_FIRST}", args)
    names = [d[0] for d in cursor.description]
    while True:
        chunk = cursor.fetchmany(batch)
        if not chunk:
            return
        for raw in chunk:
            yield with_state(dict(zip(names, raw)))


def _dicts(cursor) -> list[dict]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, raw)) for raw in cursor.fetchall()]


_HOST = socket.gethostname()


def with_state(row: dict) -> dict:
    """A row read with SELECT, its `closed` flag turned into `state`."""
    closed = row.pop("closed", 1)
    state = row["outcome"]
    if state == STARTED and not closed:
        state = RUNNING if _alive_here(row) else INTERRUPTED
    row["state"] = state
    return row


def _alive_here(row: dict) -> bool:
    if row.get("origin") or not str(row.get("actor", "")).endswith("@" + _HOST):
        return False
    return pid_alive(row.get("pid") or 0)


def count_events(db: sqlite_utils.Database, flt: AuditFilter = AuditFilter(), extra: str = "",
                 extra_args=()) -> int:
    """How many events the filter (and `extra`, a clause of where_sql) lets through."""
    where, args = where_sql(flt, extra, extra_args)
    return db.execute(f"select count(*) from events{where}", args).fetchone()[0]


def filter_choices(db: sqlite_utils.Database, after: int = 0) -> dict[str, list[str]]:
    """The servers, models and actions that occur in the log, sorted (empty values left out); only
    in the events recorded after seq `after` when given (what a refresh adds to known choices)."""
    out = {}
    for column in ("server", "model", "action", "actor"):
        since = " and seq > ?" if after else ""
        rows = db.execute(f"select distinct {column} from events where {column} != ''{since} order by {column}",
                          [after] if after else [])
        out[column] = [r[0] for r in rows]
    return out


@dataclass
class Page:
    """One read for the view: the rows (newest first), the total for the filter, and the choices."""
    rows: list[dict]
    total: int
    choices: dict[str, list[str]] | None = None


def read_page(db: sqlite_utils.Database, flt: AuditFilter, limit: int = 500, offset: int = 0,
              with_choices: bool = False) -> Page:
    return Page(query_events(db, flt, limit, offset), count_events(db, flt),
                filter_choices(db) if with_choices else None)
