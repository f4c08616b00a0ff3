"""The handle every Berth SQLite file is read and written through: a plain sqlite3 connection with
the few calls Berth uses (`conn`, `execute`, `table_names`, `close`), the same as sqlite_utils'
Database. Not sqlite_utils itself: importing sqlite_utils.db imports pandas and numpy whenever they
are installed (0.5 s of every `berth status`), so it is loaded only to run a migration (db.py)."""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

_TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"}
_WORD = re.compile(r"[\s;\ufeff]*([A-Za-z]*)")


class Database:
    """`execute` commits a write that opened its own transaction and rolls back one that failed, as
    sqlite_utils' does (code written against either behaves the same); inside `with db.conn:` or
    another open transaction a write stays part of it."""

    def __init__(self, path: Path | str):
        self.conn = sqlite3.connect(str(path))
        self.execute("PRAGMA recursive_triggers=on;")  # as sqlite_utils sets it: the same rules for triggers

    def execute(self, sql: str, parameters=None) -> sqlite3.Cursor:
        was_in_transaction = self.conn.in_transaction
        try:
            cursor = self.conn.execute(sql) if parameters is None else self.conn.execute(sql, parameters)
        except Exception:
            if not was_in_transaction and self.conn.in_transaction:
                self.conn.execute("ROLLBACK")  # else the implicit transaction would capture every later write
            raise
        if (not was_in_transaction and self.conn.in_transaction and cursor.description is None
                and _first_word(sql) not in _TRANSACTION_CONTROL):
            self.conn.execute("COMMIT")
        return cursor

    def table_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("select name from sqlite_master where type = 'table'")]

    def close(self) -> None:
        self.conn.close()


def _first_word(sql: str) -> str:
    """The statement's first keyword, upper case (comments are not skipped: Berth writes none first)."""
    found = _WORD.match(sql)
    return found.group(1).upper() if found else ""


def sqlite_utils_without_pandas():
    """sqlite_utils, imported with pandas kept out: its db module imports pandas whenever it is
    installed (only to map pandas.Timestamp to TEXT, which Berth never inserts), and that alone was
    ~40 MB of a console's RSS for its whole life once a first start had created monitor.sqlite."""
    import sys

    if "sqlite_utils.db" not in sys.modules and "pandas" not in sys.modules:
        sys.modules["pandas"] = None  # `import pandas` raises ImportError while sqlite_utils loads
        try:
            import sqlite_utils  # noqa: F401
        finally:
            if sys.modules.get("pandas", 0) is None:
                del sys.modules["pandas"]
    import sqlite_utils

    return sqlite_utils
