"""Importing a server's journal into the local audit log, so every operator sees the same history
of a server. Events are deduplicated by id (a desktop's own deploys carry the ids it gave the
agent), and the journal's own hash chain is checked as it is read: a server whose journal was
edited is reported once, as a failed `journal.verify` event, and the readable events still come in."""
from __future__ import annotations

from dataclasses import dataclass

from app.agent import journal as server_journal

from .chain import append
from .log import AuditLog
from .period import iso, parse_time

BATCH = 5000
MAX_PER_PULL = 200_000  # a runaway journal cannot hold a connection forever


@dataclass
class SyncResult:
    server: str
    imported: int = 0
    seen: int = 0
    problem: str = ""


class JournalSync:
    def __init__(self, db):
        self.db = db

    def cursor(self, server: str) -> dict:
        row = self.db.execute("select last_id, last_hash, last_seq, problem from audit_sync where server = ?",
                              [server]).fetchone()
        if not row:
            return {"last_id": "", "last_hash": server_journal.GENESIS, "last_seq": 0, "problem": ""}
        return dict(zip(("last_id", "last_hash", "last_seq", "problem"), row))

    def up_to_date(self, server: str, head: dict | None) -> bool:
        """True when the server's journal head (from `hello` or `status`) is the one imported last."""
        return bool(head) and head.get("hash") == self.cursor(server)["last_hash"]

    def pull(self, transport) -> SyncResult:
        """Import what `transport`'s server journal has that this desktop has not seen."""
        name = transport.name
        result = SyncResult(name)
        cur = self.cursor(name)
        while result.seen < MAX_PER_PULL:
            answer = transport.agent("journal", {"after": cur["last_id"] or None, "limit": BATCH})
            events = answer.get("events", [])
            if cur["last_id"] and answer.get("start") == 0 and answer.get("lines"):
                result.problem = result.problem or (f"the journal of {name} no longer holds event {cur['last_id']} "
                                                    "imported before: it was rewritten or cut")
                cur = dict(cur, last_hash=server_journal.GENESIS, last_seq=0)
            ok, index, problem = server_journal.verify(events, cur["last_hash"], cur["last_seq"])
            if not ok and not result.problem:
                result.problem = f"journal of {name}: {problem}"
            result.seen += len(events)
            cur, added = self._import(name, events, cur)
            result.imported += added
            if not answer.get("more"):
                break
        self._report(name, result.problem)
        return result

    def _import(self, server: str, events: list[dict], cur: dict) -> tuple[dict, int]:
        """After a break the cursor re-anchors on what was read, so later changes are checked too."""
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        added = 0
        try:
            known = _known_ids(conn, [e.get("id", "") for e in events])
            for e in events:
                if "unreadable" in e or not e.get("id") or e["id"] in known:
                    continue
                append(conn, _local_row(server, e))
                known.add(e["id"])
                added += 1
            if events:
                last = next((e for e in reversed(events) if e.get("id")), None)
                if last:
                    cur = dict(cur, last_id=last["id"])
                    if "hash" in last:
                        cur.update(last_hash=last["hash"], last_seq=int(last.get("seq", 0)))
            conn.execute("insert or replace into audit_sync (server, last_id, last_hash, last_seq, problem, synced_at)"
                         " values (?, ?, ?, ?, ?, ?)",
                         [server, cur["last_id"], cur["last_hash"], cur["last_seq"], cur["problem"], server_journal.utc_now()])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return cur, added

    def _report(self, server: str, problem: str) -> None:
        """A broken journal is recorded once per new problem, not at every refresh."""
        if problem and problem != self.cursor(server)["problem"]:
            AuditLog(self.db).record("journal.verify", "failed", server=server, detail=problem)
            self.db.execute("update audit_sync set problem = ? where server = ?", [problem, server])
            self.db.conn.commit()


def _known_ids(conn, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        found.update(r[0] for r in conn.execute(
            f"select id from events where id in ({','.join('?' * len(part))})", part))
    return found


def _local_row(server: str, e: dict) -> dict:
    actor = e.get("actor") if isinstance(e.get("actor"), dict) else {}
    text = {k: _text(e.get(k)) for k in ("model", "version", "sha256", "old", "new", "reason", "detail", "ref")}
    return dict(text, id=str(e["id"])[:64], ts=_ts(e.get("ts")), action=_text(e.get("action")) or "?",
                outcome=_text(e.get("outcome")) or "?", server=server, origin=f"server:{server}", pid=0,
                actor=f"{_text(actor.get('user')) or '?'}@{_text(actor.get('host')) or '?'}",
                ssh_user=_text(actor.get("ssh_user")))


def _text(value) -> str:
    return "" if value is None else str(value)[:4000]


def _ts(value) -> str:
    """The log's own format; journals written before the chain used whole seconds with a Z."""
    try:
        return iso(parse_time(str(value)))
    except ValueError:
        return server_journal.utc_now()
