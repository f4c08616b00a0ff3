"""Reading the audit log for a view: filters, paging, counts and the values a filter can take.

Newest first. The free-text filter matches any column (case-insensitive, literal: `%` and `_` are
not wildcards)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .log import FIELDS

if TYPE_CHECKING:  # loaded on first use: the window paints sooner
    import sqlite_utils


COLUMNS = ("id",) + FIELDS
TEXT_COLUMNS = ("actor", "ssh_user", "server", "model", "version", "sha256", "action", "outcome", "detail")


@dataclass(frozen=True)
class AuditFilter:
    server: str = ""
    model: str = ""
    action: str = ""
    text: str = ""

    def where(self) -> tuple[str | None, list]:
        clauses, args = [], []
        for column in ("server", "model", "action"):
            value = getattr(self, column)
            if value:
                clauses.append(f"{column} = ?")
                args.append(value)
        text = self.text.strip()
        if text:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            clauses.append("(" + " or ".join(f"{c} like ? escape '\\'" for c in TEXT_COLUMNS) + ")")
            args.extend([pattern] * len(TEXT_COLUMNS))
        return (" and ".join(clauses) or None), args


def query_events(db: sqlite_utils.Database, flt: AuditFilter = AuditFilter(), limit: int = 500,
                 offset: int = 0) -> list[dict]:
    where, args = flt.where()
    rows = db["events"].rows_where(where, args, order_by="ts desc, rowid desc", limit=limit, offset=offset,
                                   select=", ".join(COLUMNS))
    return [dict(r) for r in rows]


def count_events(db: sqlite_utils.Database, flt: AuditFilter = AuditFilter()) -> int:
    where, args = flt.where()
    sql = "select count(*) from events" + (f" where {where}" if where else "")
    return db.execute(sql, args).fetchone()[0]


def filter_choices(db: sqlite_utils.Database) -> dict[str, list[str]]:
    """The servers, models and actions that occur in the log, sorted (empty values left out)."""
    out = {}
    for column in ("server", "model", "action"):
        rows = db.execute(f"select distinct {column} from events where {column} != '' order by {column}")
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
