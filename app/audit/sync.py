"""Importing a server's journal into the local audit log, so every operator sees the same history
of a server. Events are deduplicated by id (a desktop's own deploys carry the ids it gave the
agent), and the journal's own hash chain is checked as it is read: a server whose journal was
edited is reported once, as a failed `journal.verify` event, and the readable events still come in.

The journal also says what this desktop's log looked like: each change it made carries its chain
head (`desktop_head`). A journal that names a "started" event of this desktop the log lacks, or a
head the log does not hold, means the local history was rewritten: reported the same way."""
from __future__ import annotations

from dataclasses import dataclass

from app.agent import journal as server_journal

from .anchor import contradiction
from .chain import append, head
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
    def __init__(self, db, anchor=None):
        self.db = db
        self._anchor = anchor if anchor is not None else getattr(db, "audit_anchor", None)

    @property
    def anchor(self):
        """Attached when first asked for (app/anchoring.py's LaterAnchor): a server whose journal has
        no news costs no keyring read; `pull` asks before it compares or imports anything."""
        return self._anchor.attached() if self._anchor is not None else None

    @property
    def desktop(self) -> str:
        return getattr(self.anchor, "desktop", "")

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
            mine = contradictions(self.db.conn, name, events, self.desktop)
            if mine and not result.problem:
                result.problem = mine[0]
            cur, added = self._import(name, events, cur)
            result.imported += added
            if not answer.get("more"):
                break
        self.report(name, result.problem)
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
        if added and self.anchor is not None:
            self.anchor.update(*head(conn), conn)
        return cur, added

    def report(self, server: str, problem: str) -> None:
        """A broken journal is recorded once per new problem, not at every refresh."""
        if problem and problem != self.cursor(server)["problem"]:
            AuditLog(self.db, self.anchor).record("journal.verify", "failed", server=server, detail=problem)
            self.db.execute("update audit_sync set problem = ? where server = ?", [problem, server])
            self.db.conn.commit()


def own_events(events: list[dict], desktop: str) -> tuple[list[dict], dict[str, dict]]:
    """The journal's "started" events this desktop sent (by the desktop id in their head), and the
    outcomes the agent wrote for them (by `ref`)."""
    if not desktop:
        return [], {}
    started = [e for e in events if isinstance(e.get("desktop_head"), dict)
               and e["desktop_head"].get("desktop") == desktop and e.get("id")]
    ids = {e["id"] for e in started}
    outcomes = {e["id"]: e for e in events if e.get("ref") in ids and e.get("id") and e.get("outcome") != "started"}
    return started, outcomes


def describe(server: str, e: dict) -> str:
    what = " ".join(str(e.get(k) or "") for k in ("action", "model", "version")).split()
    return f"{' '.join(what)} {e.get('outcome', '')} on {server} at {str(e.get('ts', '?'))[:19]}"


def contradictions(conn, server: str, events: list[dict], desktop: str) -> list[str]:
    """What `events` (of `server`'s journal) say about this desktop's log that the log does not
    hold: a "started" event it sent (Berth records it before it asks the agent) or the head it was
    at then. Each item names the event and what is wrong."""
    started, _ = own_events(events, desktop)
    problems = []
    for e in started:
        local = conn.execute("select origin from events where id = ?", [e["id"]]).fetchone()
        if local is None or local[0]:
            problems.append(f"the journal of {server} holds event {e['id'][:12]} ({describe(server, e)}) recorded "
                            "by this desktop, but the local log "
                            + ("does not have it: deleted, or the log was replaced" if local is None else
                               "has it only as imported from a journal: it was deleted and came back by an import"))
        dh = e["desktop_head"]
        try:
            seq, hash_ = int(dh.get("seq")), str(dh.get("hash"))
        except (TypeError, ValueError):
            problems.append(f"the journal of {server} holds an unreadable desktop head in event {e['id'][:12]}")
            continue
        bad = contradiction(conn, seq, hash_, f"the journal of {server} ({describe(server, e)})")
        if bad:
            problems.append(bad)
    return problems


# compared between a journal event and the local copy of it (both sides record these from the one request)
OWN_FIELDS = ("action", "outcome", "model", "version", "actor")
STARTED_FIELDS = OWN_FIELDS + ("sha256", "reason")


@dataclass
class JournalCheck:
    server: str
    problems: list
    own: int = 0  # events of this desktop found in the journal
    heads: int = 0  # desktop heads checked
    imported: int = 0  # other events compared with their imported copy
    pending: int = 0  # outcomes the agent wrote after this desktop lost sight of the change: not imported yet

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def message(self) -> str:
        if self.problems:
            more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            return f"{self.server}: {self.problems[0]}{more}"
        wait = f"; {self.pending} outcome(s) not imported yet (berth audit sync)" if self.pending else ""
        return (f"{self.server}: the journal agrees: {self.own} event(s) of this desktop present and the same, "
                f"{self.heads} recorded head(s) are prefixes of the local chain, {self.imported} imported event(s) "
                f"unchanged{wait}")

    def to_dict(self) -> dict:
        return {"server": self.server, "ok": self.ok, "problems": self.problems, "own": self.own, "heads": self.heads,
                "imported": self.imported, "pending": self.pending, "message": self.message}


def check_journal(conn, server: str, events: list[dict], desktop: str, chain: bool = True) -> JournalCheck:
    """Compare all of `server`'s journal with the local log: every event of this desktop present with
    the same content, every head it recorded a prefix of the local chain, every imported event
    unchanged; and (`chain`) the journal's own chain, which an import reports by itself already."""
    check = JournalCheck(server, [])
    ok, _index, problem = server_journal.verify(events) if chain else (True, 0, "")
    if not ok:
        check.problems.append(f"its journal is broken: {problem}")
    check.problems += contradictions(conn, server, events, desktop)
    started, outcomes = own_events(events, desktop)
    check.heads = len(started)
    started_ids = {e["id"] for e in started}
    local = _rows(conn, [e.get("id", "") for e in events if e.get("id")])
    for e in started + list(outcomes.values()):
        check.own += 1
        row = local.get(e["id"])
        if row is None:
            if e["id"] in started_ids:
                continue  # named by contradictions()
            lost = conn.execute("select 1 from events where ref = ? and outcome = 'lost'", [e.get("ref")]).fetchone()
            if lost:
                check.pending += 1
            else:
                check.problems.append(f"the journal of {server} holds the outcome {e['id'][:12]} ({describe(server, e)}) "
                                      "of a change of this desktop, but the local log does not have it: deleted")
            continue
        fields = STARTED_FIELDS if e["id"] in started_ids else OWN_FIELDS
        differ = _differ(_local_row(server, e), row, fields)
        if differ:
            check.problems.append(_differs(server, e, differ))
    origin = f"server:{server}"
    mine = started_ids | set(outcomes)
    for e in events:
        row = local.get(e.get("id", ""))
        if row is None or e["id"] in mine or row["origin"] != origin:
            continue
        check.imported += 1
        differ = _differ(_local_row(server, e), row, [k for k in _local_row(server, e) if k not in ("server", "pid")])
        if differ:
            check.problems.append(_differs(server, e, differ))
    return check


def _differ(want: dict, row: dict, fields) -> list[str]:
    return [f"{k} {row.get(k)!r} here, {want.get(k)!r} in the journal" for k in fields
            if str(row.get(k) or "") != str(want.get(k) or "")]


def _differs(server: str, e: dict, differ: list[str]) -> str:
    return f"event {e['id'][:12]} ({describe(server, e)}) differs from the journal of {server}: {'; '.join(differ)}"


def _rows(conn, ids: list[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        cursor = conn.execute(f"select * from events where id in ({','.join('?' * len(part))})", part)
        names = [d[0] for d in cursor.description]
        for raw in cursor:
            row = dict(zip(names, raw))
            found[row["id"]] = row
    return found


def read_journal(transport) -> list[dict]:
    """All of a server's journal (in batches; bounded like a pull)."""
    events, after = [], None
    while len(events) < MAX_PER_PULL:
        answer = transport.agent("journal", {"after": after, "limit": BATCH})
        chunk = answer.get("events", [])
        events += chunk
        if not answer.get("more") or not chunk:
            break
        after = next((e["id"] for e in reversed(chunk) if e.get("id")), None)
        if after is None:
            break
    return events


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
