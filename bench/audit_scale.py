"""The audit log at scale: a store of 1,000,000 events, then the issue's goals one by one.

    .venv/bin/python bench/audit_scale.py                  # 1M events (~1-2 min to build on 2 cores)
    .venv/bin/python bench/audit_scale.py --events 100000  # a quicker look (goals are for 1M)

The store is built on the fast path (rows made in Python, hashed with chain.event_hash and inserted
with executemany in one transaction, head written to audit_meta), then checked with the same code
the product runs. Measured: appends through AuditLog.record on top of the store (each its own
IMMEDIATE transaction and commit, then the sidecar anchor; interleaved with appends without it, and
the anchor's own time), the console's first page (query_events, limit 500) filtered by
server+model, unfiltered and by text, chain.verify of everything, a CSV export of ~100,000 events
(a since/until window) and a PDF report of ~10,000 events, both through export_events (which also
verifies the whole chain first; that part is printed on its own line).
"""
from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.audit.anchor import Anchor  # noqa: E402
from app.audit.chain import CHAINED, GENESIS, event_hash, set_head, verify  # noqa: E402
from app.audit.export import export_events  # noqa: E402
from app.audit.log import AuditLog  # noqa: E402
from app.audit.query import AuditFilter, count_events, iter_events, query_events  # noqa: E402
from app.audit.report import build_report  # noqa: E402
from app.store.db import open_db  # noqa: E402

SERVERS = [f"srv-{i:02d}" for i in range(20)]
MODELS = ["iris", "wine", "churn", "fraud", "ranker", "ocr", "asr", "sentiment", "forecast", "embed", "dedup", "nsfw"]
ACTORS = [f"{u}@{h}" for u in ("alice", "bob", "carol", "dave", "erin") for h in ("laptop", "ws-7")]
OTHER = ["start", "stop", "connect", "bundle.check", "server.edit", "hostkey.trust", "settings.change"]
COLUMNS = ("seq", "id", "ts", "actor", "ssh_user", "server", "model", "version", "sha256", "action", "outcome",
           "old", "new", "reason", "detail", "ref", "origin", "pid", "prev_hash", "hash")


class _TimedAnchor(Anchor):
    """The product's anchor, timing its own updates."""
    spent = 0.0

    def update(self, *args, **kwargs):
        t0 = time.perf_counter()
        super().update(*args, **kwargs)
        self.spent += time.perf_counter() - t0


class _NoAnchor:
    """Stands in for an anchor that records nothing (AuditLog would otherwise look for one on the db)."""
    desktop = ""

    def update(self, seq, hash_, conn=None, prev_hash=""):
        pass


def synthetic(n: int, seed: int = 7):
    """n event dicts, oldest first: deploy pairs (started + ok/failed, 2 % never finished), automatic
    rollbacks after some failures, operator rollbacks, and the smaller actions."""
    rng = random.Random(seed)
    t = datetime(2025, 1, 1, tzinfo=timezone.utc)
    current: dict[tuple, str] = {}
    made = 0

    def ev(action, outcome, **kw):
        nonlocal t, made
        t += timedelta(milliseconds=rng.randint(5_000, 60_000))
        made += 1
        return dict(id="%032x" % rng.getrandbits(128), ts=t.isoformat(timespec="milliseconds"),
                    actor=kw.pop("actor", rng.choice(ACTORS)), ssh_user="deploy", action=action, outcome=outcome,
                    **kw)

    while made < n:
        server, model = rng.choice(SERVERS), rng.choice(MODELS)
        key = (server, model)
        old = current.get(key, "")
        r = rng.random()
        if r < 0.55:
            version = f"1.{rng.randint(0, 40)}.{rng.randint(0, 9)}"
            sha = "%064x" % rng.getrandbits(256)
            base = dict(server=server, model=model, version=version, sha256=sha, actor=rng.choice(ACTORS))
            started = ev("deploy", "started", pid=rng.randint(1000, 60000), **base)
            yield started
            fate = rng.random()
            if fate < 0.02:
                continue  # interrupted
            if fate < 0.10:
                yield ev("deploy", "failed", ref=started["id"], detail="health check failed: HTTP 500 on /predict",
                         **base)
                if old and rng.random() < 0.5:
                    yield ev("rollback.auto", "ok", server=server, model=model, version=old, old=version, new=old,
                             detail="restored after failed health check")
                continue
            yield ev("deploy", "ok", ref=started["id"], old=old, new=version, detail="deployed in 12.3 s", **base)
            current[key] = version
        elif r < 0.62 and old:
            back = f"1.{rng.randint(0, 40)}.{rng.randint(0, 9)}"
            yield ev("rollback", "ok", server=server, model=model, version=back, old=old, new=back,
                     reason="latency regression")
            current[key] = back
        else:
            yield ev(rng.choice(OTHER), rng.choice(("ok", "ok", "ok", "failed")), server=server,
                     model=model if rng.random() < 0.5 else "", detail="synthetic event")


def build_store(path: Path, n: int) -> float:
    """Insert n chained events on the fast path; returns seconds."""
    t0 = time.perf_counter()
    db = open_db(path)
    conn = db.conn
    conn.execute("PRAGMA cache_size=-200000")
    prev, seq, batch = GENESIS, 0, []
    sql = f"insert into events ({', '.join(COLUMNS)}) values ({', '.join('?' * len(COLUMNS))})"
    conn.execute("BEGIN")
    for e in synthetic(n):
        seq += 1
        e["seq"] = seq
        values = [e.get(k, "") if k != "pid" else e.get("pid", 0) for k in CHAINED]
        h = event_hash(prev, values)
        batch.append((*values, prev, h))
        prev = h
        if len(batch) >= 50_000:
            conn.executemany(sql, batch)
            batch.clear()
            print(f"\r  building: {seq:,} / {n:,}", end="", flush=True)
    if batch:
        conn.executemany(sql, batch)
    set_head(conn, seq, prev)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    db.close()
    print()
    return time.perf_counter() - t0


def best_ms(fn, repeat: int = 5) -> float:
    """Fastest of `repeat` runs, in ms, after one warm-up run."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def window(db, n: int) -> AuditFilter:
    """A since/until filter holding about n events from the middle of the log."""
    total = db.execute("select max(seq) from events").fetchone()[0]
    mid = total // 2
    lo = max(1, mid - n // 2)
    hi = min(total, lo + n - 1)
    a = db.execute("select ts from events where seq = ?", [lo]).fetchone()[0]
    b = db.execute("select ts from events where seq = ?", [hi]).fetchone()[0]
    return AuditFilter(since=a, until=b)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--appends", type=int, default=5000)
    p.add_argument("--csv-events", type=int, default=100_000)
    p.add_argument("--pdf-events", type=int, default=10_000)
    p.add_argument("--keep", action="store_true", help="keep the temp folder (and print it)")
    p.add_argument("--store", type=Path, help="reuse this store (made by an earlier --keep run) instead of building")
    args = p.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="berth-audit-scale-"))
    rows = []  # (figure, value, unit, goal, better: "above" | "below")
    try:
        path = args.store or tmp / "berth.db"
        if not args.store:
            print(f"building a store of {args.events:,} events in {tmp}")
            built = build_store(path, args.events)
            print(f"  built in {built:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")
        db = open_db(path)
        args.events = db.execute("select count(*) from events").fetchone()[0]

        t0 = time.perf_counter()
        v = verify(db.conn)
        t_verify = time.perf_counter() - t0
        assert v.ok, v.message
        rows.append((f"verify {v.checked:,} events", t_verify, "s", 10.0, "below"))

        # as the product appends: the sidecar anchor (HMAC key in memory here, never the real keyring)
        anchor = _TimedAnchor(path.with_suffix(".anchor"), "bench", secrets.token_bytes(32), expected=False)
        logs = {"anchored": AuditLog(db, anchor), "bare": AuditLog(db, _NoAnchor())}
        spent = dict.fromkeys(logs, 0.0)
        # interleaved in small blocks, in a random order each round. A WAL checkpoint (every ~1,200
        # appends here, a hundred times slower than an append) would land on whichever block it
        # falls in and decide the comparison: checkpoints run between blocks, untimed, for both
        per, order = 50, random.Random(1)
        rounds = max(1, args.appends // (2 * per))
        db.execute("PRAGMA wal_autocheckpoint=0")
        for _ in range(rounds):
            names = list(logs)
            order.shuffle(names)
            for name in names:
                log = logs[name]
                t0 = time.perf_counter()
                for i in range(per):
                    log.record("deploy", "ok", server=SERVERS[i % 20], model=MODELS[i % 12], version="9.9.9",
                               detail="bench append")
                spent[name] += time.perf_counter() - t0
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        db.execute("PRAGMA wal_autocheckpoint=10000")
        done = rounds * per
        rows.append((f"append ({done:,} x AuditLog.record, anchored, no checkpoints)", done / spent["anchored"], "events/s",
                     2000.0, "above"))
        rows.append(("  the same without the anchor, interleaved", done / spent["bare"], "events/s", None, ""))
        # the anchor's own time, measured inside it: what it adds to each append
        rows.append(("  the anchor's own time per append", anchor.spent / max(1, done) * 1e6, "us", None, ""))
        anchor.close()

        flt = AuditFilter(server="srv-03", model="fraud")
        rows.append(("first page: server+model (limit 500)", best_ms(lambda: query_events(db, flt, 500)), "ms", 50.0,
                     "below"))
        rows.append(("first page: unfiltered (limit 500)", best_ms(lambda: query_events(db, AuditFilter(), 500)),
                     "ms", 50.0, "below"))
        rows.append(("first page: text 'carol' (limit 500)",
                     best_ms(lambda: query_events(db, AuditFilter(text="carol"), 500)), "ms", 50.0, "below"))
        rows.append(("first page: text 'regression' (limit 500)",
                     best_ms(lambda: query_events(db, AuditFilter(text="regression"), 500), 2), "ms", 50.0, "below"))
        rows.append(("  count for server+model (console total)", best_ms(lambda: count_events(db, flt)), "ms", None,
                     ""))

        flt_csv = window(db, args.csv_events)
        t0 = time.perf_counter()
        res = export_events(db, flt_csv, "csv", tmp / "out.csv", exported_by="bench@here")
        t_csv = time.perf_counter() - t0
        rows.append((f"CSV export of {res.count:,} events (a CSV does not walk the chain)", t_csv, "s", 3.0,
                     "below"))
        print(f"  csv: {(tmp / 'out.csv').stat().st_size / 1e6:.1f} MB")
        t0 = time.perf_counter()
        res = export_events(db, flt_csv, "csv", tmp / "out2.csv", exported_by="bench@here", verify_chain=True)
        rows.append(("  the same with verify_chain=True (the whole chain first)", time.perf_counter() - t0, "s",
                     None, ""))

        flt_pdf = window(db, args.pdf_events)
        from app.ui.audit.report_pdf import write_pdf

        t0 = time.perf_counter()
        res = export_events(db, flt_pdf, "pdf", tmp / "out.pdf", exported_by="bench@here", pdf_writer=write_pdf)
        t_pdf = time.perf_counter() - t0
        rows.append((f"PDF report of {res.count:,} events (incl. verify)", t_pdf, "s", 20.0, "below"))
        print(f"  pdf: {(tmp / 'out.pdf').stat().st_size / 1e6:.1f} MB")
        t0 = time.perf_counter()  # the same report without the chain walk: its own two reads and the drawing
        report = build_report(iter_events(db, flt_pdf), flt_pdf, exported_by="bench@here", verdict=v)
        write_pdf(report, iter_events(db, flt_pdf), str(tmp / "out2.pdf"))
        rows.append((f"  PDF of {report.count:,} events without verify", time.perf_counter() - t0, "s", 20.0, "below"))
        db.close()
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{'figure':<48} {'value':>12}  {'goal':>14}  ratio   ")
    missed = 0
    for name, value, unit, goal, better in rows:
        if goal is None:
            shown = f"{value:>8,.0f}" if unit == "events/s" else f"{value:>8.{1 if unit == 'ms' else 2}f}"
            print(f"{name:<48} {shown} {unit:<3}")
            continue
        ratio = value / goal
        met = ratio >= 1 if better == "above" else ratio <= 1
        missed += not met
        shown = f"{value:,.0f}" if unit == "events/s" else f"{value:.{1 if unit == 'ms' else 2}f}"
        goal_text = ("> " if better == "above" else "< ") + f"{goal:g} {unit}"
        print(f"{name:<48} {shown:>8} {unit:<9} {goal_text:>14}  {ratio:5.2f}x  {'MET' if met else 'MISSED'}")
    print(f"\n({args.events:,} events in the store; ratio = value / goal)")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip() or "?"
    print(f"commit {commit}, Python {sys.version.split()[0]}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the end (other work inflates every figure)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
