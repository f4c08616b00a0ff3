"""The chain's head kept outside the file it protects: a sidecar file beside berth.sqlite.

Anyone who can write berth.sqlite can rebuild a consistent chain (and its head in `audit_meta`), or
empty the file. The sidecar records, after every append, which event the log had reached and its
hash; `check` then asks the log for that very event. The record is authenticated with an HMAC whose
key lives in the OS keyring (passed in: this module knows no keyring), so an edited sidecar is seen
too; without a secure keyring it is written unauthenticated, and the verdict says so.

The record is one fixed-size line overwritten in place (one pwrite, no rename, no fsync): an append
costs a few microseconds more, not a file creation.
The record only moves forward (under an advisory lock), so it names the log's last event; events
after it were not appended by Berth. Once the log contradicts the record, the record is frozen:
Berth never overwrites the evidence."""
from __future__ import annotations

import hmac
import json
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from .chain import GENESIS

SIZE = 512  # one record, padded: a single small write at offset 0
VERSION = 1
_SEQ = re.compile(rb'"seq":(\d+)')
try:
    import fcntl
except ImportError:  # Windows: no advisory locks; two processes may then move the record back (still true)
    fcntl = None


def _lock(fd: int, on: bool) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX if on else fcntl.LOCK_UN)


def record_mac(key, desktop: str, seq: int, hash_: str, at: str) -> str:
    """HMAC-SHA256 of the record's fields (a version tag first, so a later format cannot be mistaken).
    `key`: the key, or an hmac object made from it (`keyed`), copied instead of keyed again."""
    text = f"berth-anchor-{VERSION}\x1f{desktop}\x1f{seq}\x1f{hash_}\x1f{at}".encode()
    if isinstance(key, bytes):
        return hmac.digest(key, text, "sha256").hex()
    mac = key.copy()
    mac.update(text)
    return mac.hexdigest()


def keyed(key: bytes):
    return hmac.new(key, digestmod="sha256")


def _now() -> str:
    """The record's time, to the second (formatted once a second: an append must stay cheap)."""
    second = int(time.time())
    if _clock[0] != second:
        _clock[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(second))]
    return _clock[1]


_clock: list = [None, ""]


@dataclass
class AnchorVerdict:
    ok: bool
    message: str
    authenticated: bool = False
    anchored: dict | None = None  # the record as read: desktop, seq, hash, at

    def to_dict(self) -> dict:
        return {"ok": self.ok, "message": self.message, "authenticated": self.authenticated,
                "anchored": self.anchored}


def event_hash_at(conn: sqlite3.Connection, seq: int) -> str | None:
    if seq == 0:
        return GENESIS
    row = conn.execute("select hash from events where seq = ?", [seq]).fetchone()
    return row[0] if row else None


def last_seq(conn: sqlite3.Connection) -> int:
    return conn.execute("select coalesce(max(seq), 0) from events").fetchone()[0]


def contradiction(conn: sqlite3.Connection, seq: int, hash_: str, said_by: str) -> str:
    """"" when the log holds event `seq` with `hash_`; else what is wrong, naming `said_by`."""
    found = event_hash_at(conn, seq)
    if found == hash_:
        return ""
    if found is None:
        return (f"the log ends at event {last_seq(conn)}, but {said_by} says {seq} events with head "
                f"{hash_[:8]}…: replaced or truncated")
    return (f"event #{seq} has hash {found[:8]}…, but {said_by} says {hash_[:8]}…: the log was rewritten "
            "(events changed, removed or inserted before it)")


class Anchor:
    """The sidecar of one log. `desktop`: this desktop's stable id (in the record and the journals);
    `key`: the HMAC key from the keyring, or None when there is no secure keyring; `expected`: an
    anchor was made before (the keyring or the log says so), so a missing file is a deleted one."""

    def __init__(self, path: Path, desktop: str, key: bytes | None, expected: bool):
        self.path, self.desktop, self.key, self.expected = Path(path), desktop, key, expected
        self.frozen = False  # the log contradicts the record: keep it as evidence
        self.last: tuple[int, str] | None = None  # the head this process last wrote (or found)
        self._fd: int | None = None
        self._mac = keyed(key) if key is not None else None

    def read(self) -> tuple[dict | None, str]:
        """(record, problem): the record when it is readable and (with a key) authentic."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            if self.expected:
                return None, (f"the anchor file {self.path} is missing: it was deleted, and is not made again "
                              "(that would bless the log as it is now): restore it, or check the log with "
                              "`berth audit verify --servers`")
            return None, ""
        except OSError as e:
            return None, f"the anchor file {self.path} cannot be read: {e.strerror or e}"
        try:
            rec = json.loads(raw.decode("utf-8").strip())
            rec = {"desktop": str(rec["desktop"]), "seq": int(rec["seq"]), "hash": str(rec["hash"]),
                   "at": str(rec["at"]), "mac": rec.get("mac")}
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None, f"the anchor file {self.path} is not an anchor record: it was edited or damaged"
        if self.key is not None:
            if not rec["mac"]:
                return None, (f"the anchor file {self.path} carries no authentication although this desktop "
                              "has its key in the keyring: it was replaced")
            want = record_mac(self.key, rec["desktop"], rec["seq"], rec["hash"], rec["at"])
            if not hmac.compare_digest(str(rec["mac"]), want):
                return None, f"the anchor file {self.path} was edited: its HMAC does not match the key in the keyring"
        elif rec["mac"] and self.expected:
            return None, (f"the anchor file {self.path} is authenticated, but its key is no longer in the keyring: "
                          "it cannot be checked")
        return rec, ""

    def check(self, conn: sqlite3.Connection, _retry: bool = True) -> AnchorVerdict:
        """Does the log hold the event the record names, with its hash, as its last event? (Every
        Berth process anchors each event it commits, and the record only moves forward.)"""
        rec, problem = self.read()
        if problem:
            return AnchorVerdict(False, f"anchor: {problem}")
        if rec is None:
            return AnchorVerdict(True, "anchor: none yet (made by the next event)")
        shown = {k: rec[k] for k in ("desktop", "seq", "hash", "at")}
        if rec["desktop"] != self.desktop:
            return AnchorVerdict(False, f"anchor: {self.path} belongs to desktop {rec['desktop']}, this log to "
                                        f"{self.desktop}: one of the two was replaced", self.key is not None, shown)
        bad = contradiction(conn, rec["seq"], rec["hash"], f"the anchor from {rec['at'][:10]}")
        if bad:
            return AnchorVerdict(False, f"anchor: {bad}", self.key is not None, shown)
        end = last_seq(conn)
        if end > rec["seq"] and _retry:  # a Berth that has just committed anchors it microseconds later
            time.sleep(0.05)
            return self.check(conn, _retry=False)
        if end > rec["seq"]:
            return AnchorVerdict(False, f"anchor: events #{rec['seq'] + 1}–#{end} come after the last anchored event "
                                        f"(#{rec['seq']}, {rec['at'][:19]}): added by something other than Berth, "
                                        "or Berth stopped between recording an event and anchoring it",
                                 self.key is not None, shown)
        how = "authenticated with the key in the keyring" if self.key is not None else \
            "NOT authenticated: no secure keyring on this computer, so whoever can write files can rewrite it"
        return AnchorVerdict(True, f"anchor: matches event #{rec['seq']} ({rec['at'][:10]}), {how}",
                             self.key is not None, shown)

    def attached(self) -> Anchor:
        """Itself (app/anchoring.py's LaterAnchor attaches one on this call)."""
        return self

    def start(self, conn: sqlite3.Connection) -> AnchorVerdict:
        """Check once when a workspace opens the log; a contradicted anchor is frozen from then on."""
        verdict = self.check(conn)
        self.frozen = not verdict.ok
        if verdict.anchored:
            self.last = (verdict.anchored["seq"], verdict.anchored["hash"])
        return verdict

    def update(self, seq: int, hash_: str, conn: sqlite3.Connection | None = None, prev_hash: str = "") -> None:
        """Record the head just committed (on `conn`; `prev_hash`: that event's link). First the head
        written last must still be in the log (the new event links to it, or else one indexed read),
        or the log was rewritten under this process and the record stays as evidence; so does a
        deleted record. Then, under a lock, a read and a write at offset 0 of a kept descriptor
        (four system calls, no fsync)."""
        if self.frozen:
            return
        last = self.last
        if last is not None and conn is not None and last[0] <= seq and not (last[0] == seq - 1 and
                                                                               prev_hash == last[1]):
            if event_hash_at(conn, last[0]) != last[1]:
                self.frozen = True
                return
        at = _now()
        mac = f'"{record_mac(self._mac, self.desktop, seq, hash_, at)}"' if self._mac is not None else "null"
        # JSON by hand (every value is hex, digits or a timestamp: nothing to escape): a third of the cost
        line = (f'{{"desktop":{json.dumps(self.desktop)},"seq":{int(seq)},"hash":"{hash_}","at":"{at}",'
                f'"mac":{mac}}}').encode()
        data = line + b" " * (SIZE - 1 - len(line)) + b"\n"
        try:
            fd = self._fd
            if fd is None:
                if self.expected and not self.path.exists():
                    self.frozen = True  # deleted: never made again (that would bless the log as it is now)
                    return
                fd = self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                if os.fstat(fd).st_size > SIZE:  # a longer file (edited by hand) would keep a tail
                    os.ftruncate(fd, SIZE)
            # deleted while open: these writes go to the unlinked file and the path stays missing, so
            # the next check still finds it deleted; no per-write stat is needed for that
            _lock(fd, True)
            try:  # forward only: the console and the CLI anchoring in turn never move it back
                found = _SEQ.search(os.pread(fd, SIZE, 0))
                if found is None or int(found.group(1)) < seq:
                    os.pwrite(fd, data, 0)
            finally:
                _lock(fd, False)
        except OSError:  # the event is committed; a stale anchor is still true (a prefix), so go on
            self.close()
            return
        self.expected, self.last = True, (seq, hash_)

    def close(self) -> None:
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)

    def __del__(self):
        self.close()


@dataclass
class AuditVerdict:
    """`berth audit verify` as a whole: (a) the chain, (b) the external anchor, (c) with servers,
    each server journal's view of this desktop's log (sync.JournalCheck)."""
    chain: object  # chain.Verdict
    anchor: AnchorVerdict | None
    journals: list

    @property
    def ok(self) -> bool:
        return self.chain.ok and (self.anchor is None or self.anchor.ok) and all(j.ok for j in self.journals)

    @property
    def lines(self) -> list[str]:
        """Problems first: the first line is the one to act on."""
        parts = [self.chain] + ([self.anchor] if self.anchor is not None else []) + list(self.journals)
        bad, good = [p.message for p in parts if not p.ok], [p.message for p in parts if p.ok]
        if bad and self.chain.ok:  # "intact" would read as a verdict: a rewritten chain is consistent too
            good[0] = (f"the chain itself is consistent ({self.chain.checked:,} events, head "
                       f"{self.chain.head_hash[:16]}), as a rewritten or emptied log's is too")
        return bad + good

    @property
    def message(self) -> str:
        return "\n".join(self.lines)

    @property
    def first_bad(self):
        return self.chain.first_bad

    def to_dict(self) -> dict:
        return dict(self.chain.to_dict(), ok=self.ok, chain_ok=self.chain.ok, lines=self.lines,
                    anchor=self.anchor.to_dict() if self.anchor is not None else None,
                    servers=[j.to_dict() for j in self.journals])
