"""The report model behind the HTML and PDF exports: who exported what period, whether the chain
held, per (server, model) how deploys went and how long a failed deploy took to recover, and which
version was current when. Built in one pass over the events (oldest first) and keeping only
counters and timelines, so a million events need no million dicts; the event table itself is
streamed by a second read (export.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable

from .period import as_bound, iso

# actions that change which version is current, and how a report names them
CHANGES = {"deploy": "deploy", "rollback": "rollback", "rollback.auto": "automatic rollback"}
NOW = "now"
END_OF_PERIOD = "end of period"


@dataclass(slots=True)
class Span:
    """One version being current: from `start` ("" = already before the first event seen) to `end`
    (a time, or "now" / "end of period" while it still is)."""
    start: str
    end: str
    version: str
    how: str  # "deploy" | "rollback" | "automatic rollback" | "" (current before the period)
    by: str


@dataclass(slots=True)
class Summary:
    server: str
    model: str
    deploys_ok: int = 0
    deploys_failed: int = 0
    interrupted: int = 0
    rollbacks: int = 0
    auto_rollbacks: int = 0
    recoveries: int = 0
    recovery_seconds: float = 0.0
    failed_since: str = ""  # ts of the first failed deploy not yet recovered

    @property
    def mttr_seconds(self) -> float | None:
        return self.recovery_seconds / self.recoveries if self.recoveries else None

    @property
    def mttr_text(self) -> str:
        return duration_text(self.mttr_seconds)


@dataclass
class Report:
    filter_text: str = "all events"
    since: str = ""  # the filter's bounds as the log's UTC text ("" = open)
    until: str = ""
    first_ts: str = ""  # the events actually seen
    last_ts: str = ""
    count: int = 0
    servers: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    exported_by: str = ""
    generated_at: str = ""
    verdict: object = None  # chain.Verdict, or None when not verified
    summaries: list[Summary] = field(default_factory=list)
    timelines: dict[tuple[str, str], list[Span]] = field(default_factory=dict)
    actions: dict[str, int] = field(default_factory=dict)

    @property
    def period_text(self) -> str:
        since = short_ts(self.since) if self.since else "the first event"
        until = short_ts(self.until) if self.until else "now"
        return f"from {since} to {until} (UTC)"

    @property
    def seen_text(self) -> str:
        if not self.count:
            return "no events"
        return f"{self.count:,} events, {short_ts(self.first_ts)} to {short_ts(self.last_ts)}"

    @property
    def head_hash(self) -> str:
        return getattr(self.verdict, "head_hash", "") or ""

    @property
    def verdict_text(self) -> str:
        return self.verdict.message if self.verdict is not None else "chain not verified"

    def totals(self) -> Summary:
        total = Summary("total", "")
        for s in self.summaries:
            for name in ("deploys_ok", "deploys_failed", "interrupted", "rollbacks", "auto_rollbacks", "recoveries",
                         "recovery_seconds"):
                setattr(total, name, getattr(total, name) + getattr(s, name))
        return total


class ReportBuilder:
    """Feed events oldest first with `add`; `report()` gives the result."""

    def __init__(self, flt=None, *, exported_by: str = "", verdict=None, generated_at: str = ""):
        self.r = Report(exported_by=exported_by, verdict=verdict,
                        generated_at=generated_at or iso(datetime.now(timezone.utc)))
        if flt is not None:
            self.r.filter_text = flt.describe()
            self.r.since = as_bound(flt.since) if flt.since else ""
            self.r.until = as_bound(flt.until, end=True) if flt.until else ""
        self._open_end = END_OF_PERIOD if self.r.until else NOW
        self._servers: set[str] = set()
        self._models: set[str] = set()
        self._summaries: dict[tuple[str, str], Summary] = {}

    def add(self, e: dict) -> None:
        r = self.r
        ts, action = e["ts"], e["action"]
        if not r.count:
            r.first_ts = ts
        r.last_ts = ts
        r.count += 1
        r.actions[action] = r.actions.get(action, 0) + 1
        server, model = e.get("server") or "", e.get("model") or ""
        if server:
            self._servers.add(server)
        if model:
            self._models.add(model)
        if action not in CHANGES or not model:
            return
        key = (server, model)
        s = self._summaries.get(key)
        if s is None:
            s = self._summaries[key] = Summary(server, model)
        state = e.get("state") or e.get("outcome")
        if state == "ok":
            if action == "deploy":
                s.deploys_ok += 1
            elif action == "rollback":
                s.rollbacks += 1
            else:
                s.auto_rollbacks += 1
            if s.failed_since:  # recovered: a good deploy, or a rollback of either kind
                s.recovery_seconds += seconds_between(s.failed_since, ts)
                s.recoveries += 1
                s.failed_since = ""
            self._became_current(key, e)
        elif action == "deploy" and state == "failed":
            s.deploys_failed += 1
            s.failed_since = s.failed_since or ts  # the outage starts at the first failure
        elif action == "deploy" and state == "interrupted":
            s.interrupted += 1

    def _became_current(self, key, e: dict) -> None:
        version = e.get("new") or e.get("version") or ""
        spans = self.r.timelines.setdefault(key, [])
        ts, old = e["ts"], e.get("old") or ""
        if spans:
            spans[-1].end = ts
        elif old and old != version:  # what was current when the period began
            spans.append(Span("", ts, old, "", ""))
        by = e.get("actor") or ""
        if e.get("origin"):
            by = f"{by} ({e['origin']})" if by else e["origin"]
        spans.append(Span(ts, self._open_end, version, CHANGES[e["action"]], by))

    def report(self) -> Report:
        r = self.r
        r.servers, r.models = sorted(self._servers), sorted(self._models)
        r.summaries = [self._summaries[k] for k in sorted(self._summaries)]
        r.timelines = {k: r.timelines[k] for k in sorted(r.timelines)}
        return r


def build_report(events: Iterable[dict], flt=None, *, exported_by: str = "", verdict=None,
                 generated_at: str = "") -> Report:
    b = ReportBuilder(flt, exported_by=exported_by, verdict=verdict, generated_at=generated_at)
    for e in events:
        b.add(e)
    return b.report()


def seconds_between(a: str, b: str) -> float:
    try:
        return max(0.0, (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds())
    except ValueError:
        return 0.0


def duration_text(seconds: float | None) -> str:
    """`n/a`, `850 ms`, `42 s`, `4 min 12 s`, `3 h 05 min`, `2 d 4 h`."""
    if seconds is None:
        return "n/a"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def short_ts(ts: str) -> str:
    """`2026-11-27 05:50:00` from the log's `2026-11-27T05:50:00.123+00:00` (UTC); other text as is."""
    if len(ts) >= 19 and ts[10] == "T":
        return ts[:10] + " " + ts[11:19]
    return ts


def change_text(e: dict) -> str:
    old, new = e.get("old") or "", e.get("new") or ""
    return f"{old} → {new}".strip() if old or new else ""


# --- HTML: one self-contained page (inline CSS, no script), printable; every value escaped ---------

_CSS = """
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;margin:2em auto;max-width:1200px;padding:0 1em}
h1{font-size:24px;margin:0 0 .2em}h2{font-size:18px;margin:1.6em 0 .5em;border-bottom:2px solid #2f6feb;padding-bottom:.2em}
h3{font-size:14px;margin:1.2em 0 .3em}.sub{color:#5b6475;margin:0 0 1.2em}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.35em 1.2em;margin:0}dl.facts dt{color:#5b6475}dl.facts dd{margin:0}
.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}.warn{color:#9a6700}
code{font:12px ui-monospace,"DejaVu Sans Mono",monospace;word-break:break-all}
table{border-collapse:collapse;width:100%;margin:.3em 0 1em}th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #e1e4ea;vertical-align:top;overflow-wrap:break-word}
td{white-space:pre-wrap}
th{background:#f0f3f8;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}tbody tr:nth-child(even){background:#fafbfc}
table.events td{font-size:12px}table.events .r{width:24%}table.events .d{width:20%}table.events td.r,table.events td.d{overflow-wrap:anywhere}
table.events th{overflow-wrap:normal;min-width:4.2em}
@media print{body{margin:0;max-width:none;font-size:10px}.title{page-break-after:always}h2{page-break-after:avoid}
thead{display:table-header-group}tr{page-break-inside:avoid}}
"""
EVENT_COLUMNS = (("time (UTC)", "ts"), ("actor", "actor"), ("server", "server"), ("model", "model"),
                 ("version", "version"), ("action", "action"), ("state", "state"), ("change", "change"),
                 ("reason", "reason"), ("detail", "detail"))
_EVENT_TH = {"reason": ' class="r"', "detail": ' class="d"'}  # the wide columns: their share of the width
SUMMARY_COLUMNS = ("server", "model", "deploys ok", "deploys failed", "interrupted", "rollbacks",
                   "automatic rollbacks", "mean time to recovery")


def summary_cells(s: Summary) -> list[str]:
    return [s.server or "—", s.model, str(s.deploys_ok), str(s.deploys_failed), str(s.interrupted), str(s.rollbacks),
            str(s.auto_rollbacks), s.mttr_text]


SPAN_COLUMNS = ("from", "to", "for", "version", "became current by", "who")


def span_cells(span: Span) -> list[str]:
    start = short_ts(span.start) if span.start else "before the period"
    timed = span.start and span.end[:1].isdigit()
    lasted = duration_text(seconds_between(span.start, span.end)) if timed else ""
    return [start, short_ts(span.end), lasted, span.version or "?", span.how or "already current", span.by]


def event_cells(e: dict) -> list[str]:
    return [short_ts(e.get("ts") or ""), e.get("actor") or "", e.get("server") or "", e.get("model") or "",
            e.get("version") or "", e.get("action") or "", e.get("state") or e.get("outcome") or "", change_text(e),
            e.get("reason") or "", e.get("detail") or ""]


def write_html(report: Report, events: Iterable[dict], out) -> int:
    """Write the whole report to the text file `out`; returns the number of event rows."""
    from html import escape

    w = out.write
    title = "Berth audit report"
    w(f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
      f'<meta name="generator" content="Berth"><style>{_CSS}</style></head><body>\n')
    v = report.verdict
    ok = v is not None and v.ok
    verdict_cls = "ok" if ok else ("warn" if v is None else "bad")
    mark = "✔" if ok else ("?" if v is None else "✘")
    facts = [("Period", escape(report.period_text)), ("Events", escape(report.seen_text)),
             ("Filter", escape(report.filter_text)),
             ("Servers", escape(", ".join(report.servers)) or "—"), ("Models", escape(", ".join(report.models)) or "—"),
             ("Exported by", escape(report.exported_by) or "—"), ("Generated", escape(short_ts(report.generated_at)) + " UTC"),
             ("Chain", f'<span class="{verdict_cls}">{mark} {escape(report.verdict_text)}</span>'),
             ("Head hash" if ok or v is None else "Last good hash", f"<code>{escape(report.head_hash) or '—'}</code>")]
    w(f'<section class="title"><h1>{escape(title)}</h1><p class="sub">{escape(report.period_text)}</p>'
      '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{val}</dd>" for k, val in facts) + "</dl></section>\n")

    w("<h2>Summary</h2>\n")
    if report.summaries:
        w("<table><thead><tr>" + "".join(
            f'<th{" class=n" if i > 1 else ""}>{escape(c)}</th>' for i, c in enumerate(SUMMARY_COLUMNS))
          + "</tr></thead><tbody>\n")
        rows = report.summaries + ([report.totals()] if len(report.summaries) > 1 else [])
        for s in rows:
            w("<tr>" + "".join(f'<td{" class=n" if i > 1 else ""}>{escape(c)}</td>'
                               for i, c in enumerate(summary_cells(s))) + "</tr>\n")
        w("</tbody></table>\n<p class=sub>Mean time to recovery: from a failed deploy to the next successful "
          "deploy, rollback or automatic rollback of the same model on the same server.</p>\n")
    else:
        w("<p class=sub>No deploys or rollbacks in this period.</p>\n")

    w("<h2>Version timeline</h2>\n")
    if not report.timelines:
        w("<p class=sub>No version changes in this period.</p>\n")
    for (server, model), spans in report.timelines.items():
        w(f"<h3>{escape(model)} on {escape(server or '—')}</h3>\n<table><thead><tr>"
          + "".join(f"<th>{escape(c)}</th>" for c in SPAN_COLUMNS) + "</tr></thead><tbody>\n")
        for span in spans:
            w("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in span_cells(span)) + "</tr>\n")
        w("</tbody></table>\n")

    w("<h2>Events</h2>\n<table class=events><thead><tr>"
      + "".join(f"<th{_EVENT_TH.get(key, '')}>{escape(c)}</th>" for c, key in EVENT_COLUMNS)
      + "</tr></thead><tbody>\n")
    n = 0
    for e in events:
        cells = event_cells(e)
        state = cells[6]
        cls = ' class="bad"' if state in ("failed", "interrupted") else ""
        w("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells[:6]) + f"<td{cls}>{escape(state)}</td>"
          + f'<td>{escape(cells[7])}</td><td class="r">{escape(cells[8])}</td><td class="d">{escape(cells[9])}</td>'
          "</tr>\n")
        n += 1
    w("</tbody></table>\n")
    if not n:
        w("<p class=sub>No events match.</p>\n")
    w(f'<p class=sub>{n:,} events · chain head <code>{escape(report.head_hash) or "—"}</code></p>\n</body></html>\n')
    return n
