"""Per server: where its packages come from (`berth server set NAME --index ...`) and what Berth last
learnt about it (`server_facts`: Python, ABI, platform tags, whether its index answers). The URL of
a private index is kept without any password (that is in the keyring: app/remote/credentials.py)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

MODES = ("online", "offline", "auto")  # or a private index's URL
FACTS_MAX_AGE_S = 24 * 3600  # a deploy asks the server again after a day (its Python may have changed)


@dataclass(frozen=True)
class IndexSetting:
    server: str
    mode: str = "online"  # online | offline | auto | url
    url: str = ""
    facts: dict = field(default_factory=dict)
    checked_at: str = ""

    def fresh_facts(self, now: datetime | None = None) -> dict | None:
        if not self.facts or not self.checked_at:
            return None
        age = ((now or datetime.now(timezone.utc)) - datetime.fromisoformat(self.checked_at)).total_seconds()
        return self.facts if age < FACTS_MAX_AGE_S else None

    def describe(self) -> str:
        return self.url if self.mode == "url" else self.mode


def parse_choice(text: str) -> tuple[str, str]:
    """(mode, url) for `--index`: online, offline, auto, or an http(s) URL without a password."""
    text = text.strip()
    if text.lower() in MODES:
        return text.lower(), ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--index takes online, offline, auto or a private index's http(s) URL, not {text!r}")
    if parts.password is not None:
        raise ValueError("give the index URL without its password (user@host is fine); the password goes to the "
                         "keyring with --index-password-stdin")
    return "url", text


class ServerIndexes:
    def __init__(self, db):
        self.db = db

    def get(self, server: str) -> IndexSetting:
        row = self.db.execute("select mode, url, facts, checked_at from server_index where server = ?",
                              [server]).fetchone()
        if not row:
            return IndexSetting(server)
        return IndexSetting(server, row[0], row[1], json.loads(row[2] or "{}"), row[3])

    def set_mode(self, server: str, mode: str, url: str = "") -> IndexSetting:
        """Returns the setting before."""
        old = self.get(server)
        with self.db.conn:
            self.db.execute("insert into server_index (server, mode, url, facts, checked_at) values (?, ?, ?, '{}', '') "
                            "on conflict (server) do update set mode = excluded.mode, url = excluded.url",
                            [server, mode, url])
        return old

    def remember(self, server: str, facts: dict) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self.db.conn:
            self.db.execute("insert into server_index (server, mode, url, facts, checked_at) values (?, 'online', '', ?, ?) "
                            "on conflict (server) do update set facts = excluded.facts, checked_at = excluded.checked_at",
                            [server, json.dumps(facts), now])


def migration(db) -> None:
    db.execute("CREATE TABLE server_index (server TEXT PRIMARY KEY, mode TEXT NOT NULL, url TEXT NOT NULL,"
               " facts TEXT NOT NULL, checked_at TEXT NOT NULL)")
