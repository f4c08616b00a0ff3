"""The operator's server list. `local` is built in and never stored; no secret is ever stored."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from app import errors
from app.errors import BerthError

from . import paths

if TYPE_CHECKING:
    from .sqlite import Database


LOCAL = "local"


@dataclass(frozen=True)
class ServerConfig:
    name: str
    kind: str = "ssh"  # "ssh" | "local"
    host: str = ""
    port: int = 22
    user: str = ""
    key_path: str = ""
    root: str = "~/berth"
    environment: str = ""
    # "auto": SSH agent, then key files, then a password if the keyring holds one; or an explicit
    # comma-separated order of "agent", "key", "password" (e.g. "password" alone)
    auth: str = "auto"
    ssh_alias: str = ""  # a Host of ~/.ssh/config: its ProxyJump, IdentityFile... apply at each connect
    # seconds; 0 = the alias's ConnectTimeout / ServerAliveInterval, else Berth's defaults (connect.py)
    connect_timeout: float = 0
    auth_timeout: float = 0
    command_timeout: float = 0  # the longest an agent command may stay silent before it is cut off
    keepalive: float = 0

    def describe(self) -> str:
        if self.kind == LOCAL:
            return "this computer"
        where = f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"
        return f"{where} (ssh alias {self.ssh_alias})" if self.ssh_alias else where


def local_server() -> ServerConfig:
    return ServerConfig(name=LOCAL, kind=LOCAL, root=str(paths.local_root()), environment="local")


class UnknownServer(BerthError, LookupError):
    def __init__(self, name: str):
        super().__init__(f"no server named '{name}'; see `berth server list`, or add it with `berth server add`",
                         errors.UNKNOWN_SERVER)


class ServerRegistry:
    """Plain SQL on `db` (app/store/sqlite.py's handle, or sqlite_utils' in tests of old files)."""

    def __init__(self, db: Database):
        self.db = db

    def list(self) -> list[ServerConfig]:
        return [local_server()] + [self._from_row(r) for r in self._rows("order by name")]

    def get(self, name: str) -> ServerConfig:
        if name == LOCAL:
            return local_server()
        rows = self._rows("where name = ?", (name,))
        if not rows:
            raise UnknownServer(name)
        return self._from_row(rows[0])

    def exists(self, name: str) -> bool:
        return name == LOCAL or bool(self._rows("where name = ?", (name,)))

    def _rows(self, rest: str, args=()) -> list[dict]:
        cursor = self.db.execute(f"select * from servers {rest}", args)
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]

    def rename_allowed(self, old: str, new: str) -> bool:
        return old == new or not self.exists(new)

    def save(self, server: ServerConfig) -> None:
        if server.name == LOCAL:
            raise ValueError("'local' is the built-in server and cannot be changed")
        row = asdict(server)
        row["added_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        columns = ", ".join(f"[{c}]" for c in row)  # the dataclass's own field names, never user text
        updates = ", ".join(f"[{c}] = excluded.[{c}]" for c in row if c != "name")
        self.db.execute(f"insert into servers ({columns}) values ({', '.join('?' * len(row))}) "
                        f"on conflict (name) do update set {updates}", list(row.values()))

    def remove(self, name: str) -> None:
        self.get(name)
        self.db.execute("delete from servers where name = ?", (name,))

    @staticmethod
    def _from_row(row: dict) -> ServerConfig:
        fields = {k: row[k] for k in ServerConfig.__dataclass_fields__ if row.get(k) is not None}
        return ServerConfig(**fields)
