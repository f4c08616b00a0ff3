"""`berth audit verify --file report.json`: re-check a JSON export without the database, so an
auditor can check what they were handed.

Each event carries `seq`, `prev_hash` and `hash`; its hash is recomputed from its own fields (the
rule of chain.py, stated in docs/audit.md) and neighbours must link. An export of everything runs
from event 1 to the head it names, so nothing can be left out unseen. A filtered export is checked
event by event and link by link where its events are neighbours; what it omits cannot be checked."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from app import errors
from app.errors import BerthError

from .chain import CHAINED, GENESIS, event_hash

FILTER_FIELDS = ("server", "model", "action", "text", "actor", "since", "until", "outcome")


class NotAnExport(BerthError, ValueError):
    default_code = errors.USAGE


@dataclass
class ExportCheck:
    path: str
    ok: bool
    checked: int = 0
    full: bool = False
    head: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    hashes: dict = field(default_factory=dict, repr=False)  # seq -> hash of the events in the file
    journals: list = field(default_factory=list)  # what each server's journal said of this export

    @property
    def message(self) -> str:
        if not self.ok:
            more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            return f"export {self.path} FAILS its check: {self.problems[0]}{more}"
        scope = (f"the whole log, events #1–#{self.head.get('seq')}, ends at the head it names"
                 if self.full else "a filtered export: each event matches its hash and links to its neighbours "
                                   "in the file; the events it omits cannot be checked")
        seen = "".join(f"; {j['heads']} head(s) recorded in the journal of {j['server']} agree" for j in self.journals)
        return (f"export {self.path} checks out: {self.checked:,} events; {scope} ({str(self.head.get('hash'))[:16]})"
                f"{seen}")

    def to_dict(self) -> dict:
        return {"path": self.path, "ok": self.ok, "checked": self.checked, "full": self.full, "head": self.head,
                "problems": self.problems, "journals": self.journals, "message": self.message}

    def against_journal(self, server: str, events: list[dict]) -> None:
        """The heads `server`'s journal recorded for the export's desktop, up to the export's head,
        must be the export's events: a forged export (every hash recomputed) fails here."""
        from .sync import describe

        desktop, compared = self.head.get("desktop") or "", 0
        for e in events:
            dh = e.get("desktop_head")
            if not desktop or not isinstance(dh, dict) or dh.get("desktop") != desktop:
                continue
            try:
                seq, hash_ = int(dh.get("seq")), str(dh.get("hash"))
            except (TypeError, ValueError):
                continue
            if seq == 0 or seq > self.head["seq"] or (seq not in self.hashes and not self.full):
                continue  # after the export, or not among a filtered export's events
            compared += 1
            if self.hashes.get(seq) != hash_:
                self.problems.append(f"the journal of {server} ({describe(server, e)}) says event #{seq} of this log "
                                     f"had hash {hash_[:8]}…, the export says {str(self.hashes.get(seq))[:8]}…: "
                                     "the export or the log it came from was rewritten")
        self.journals.append({"server": server, "heads": compared})
        self.ok = not self.problems


def _name(e: dict) -> str:
    return f"event #{e.get('seq')} ({e.get('ts', '?')}, {e.get('action', '?')}, id {e.get('id', '?')})"


def verify_export(path) -> ExportCheck:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        events, head, flt = data["events"], data["head"], data["filter"]
        head = {"seq": int(head["seq"]), "hash": str(head["hash"]), **{k: v for k, v in head.items()
                                                                        if k not in ("seq", "hash")}}
    except FileNotFoundError:
        raise NotAnExport(f"{path} does not exist") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise NotAnExport(f"{path} is not a Berth JSON export with chain data (seq, prev_hash, hash and head; "
                          f"exports before 2026-12 carry none): {e}") from None
    full = isinstance(flt, dict) and not any(flt.get(k) for k in FILTER_FIELDS)
    check = ExportCheck(str(path), True, full=full, head=head)
    problems = check.problems
    verification = data.get("verification") or {}
    if verification.get("ok") is False:
        problems.append(f"the export itself says the log's chain was broken when it was written: "
                        f"{verification.get('message', '?')}")
    try:
        ordered = sorted(events, key=lambda e: int(e["seq"]))
    except (KeyError, TypeError, ValueError):
        raise NotAnExport(f"{path}: an event has no seq: not an export with chain data") from None
    prev_seq, prev_hash = 0, GENESIS
    for e in ordered:
        seq = int(e["seq"])
        if seq == prev_seq:
            problems.append(f"event #{seq} appears twice")
        elif seq != prev_seq + 1 and full:
            problems.append(f"events #{prev_seq + 1}–#{seq - 1} are missing from an export of the whole log")
        elif seq == prev_seq + 1 and e.get("prev_hash") != prev_hash:
            problems.append(f"{_name(e)} does not link to the event before it in the file")
        try:
            ok = all(k in e for k in CHAINED) and event_hash(e.get("prev_hash", ""), [e[k] for k in CHAINED]) == e.get("hash")
        except ValueError:
            ok = False
        if not ok:
            problems.append(f"{_name(e)} was changed: its content does not match its hash")
        prev_seq, prev_hash = seq, e.get("hash")
        check.hashes[seq] = prev_hash
        check.checked += 1
    if prev_seq > head["seq"]:
        problems.append(f"the file holds event #{prev_seq}, after the head it names (#{head['seq']})")
    elif prev_seq == head["seq"] and prev_hash != head["hash"] and (ordered or head["seq"]):
        problems.append(f"its last event's hash {str(prev_hash)[:16]} is not the head it names ({head['hash'][:16]})")
    elif full and prev_seq < head["seq"]:
        problems.append(f"events #{prev_seq + 1}–#{head['seq']} (up to the head it names) are missing from an "
                        "export of the whole log")
    check.ok = not problems
    return check
