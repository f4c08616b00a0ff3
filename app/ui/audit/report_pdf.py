"""The audit report as a PDF, drawn with Qt's own PDF writer (QPdfWriter + QPainter): no browser,
works headless (the CLI gets an offscreen application). A4 landscape, our own simple layout:
a title page, the summary, the version timelines, then the event table with its header repeated
on every page; each page has "page N of M" and the chain's head hash in the footer.

Every line has a fixed height. Long cells are cut with "…", except an event's reason and detail,
which are what an auditor reads: they wrap (at spaces, inside a word only when it is wider than the
column) and keep their own line breaks, up to MAX_LINES lines. The rows are wrapped once, then laid
out twice: a dry run that counts the pages (the "of M"), then the drawing; 10,000 rows take seconds."""
from __future__ import annotations

import os
from typing import Callable, Iterable

from PySide6.QtCore import QMarginsF, QPointF, QRectF, Qt
from PySide6.QtGui import (QColor, QFont, QFontMetricsF, QGuiApplication, QPageLayout, QPageSize, QPainter,
                           QPdfWriter, QPen)

from app.audit.report import (EVENT_COLUMNS, SPAN_COLUMNS, SUMMARY_COLUMNS, Report, event_cells, short_ts,
                              span_cells, summary_cells)

DPI = 300
PT = DPI / 72  # device units per point: layout is written in points
PAGE_W, PAGE_H = 842, 595  # A4 landscape, points
LEFT, RIGHT, TOP, BOTTOM = 36, 36, 34, 40
WIDTH = PAGE_W - LEFT - RIGHT
FAMILY, MONO = "DejaVu Sans", "DejaVu Sans Mono"

INK, MUTED, RULE, HEAD_BG, STRIPE = "#1d2330", "#5b6475", "#c9cfd9", "#e8edf5", "#f6f8fb"
GOOD, BAD, ACCENT = "#1a7f37", "#c62828", "#2f6feb"

ROW_H = 11.5  # event table
EVENT_WIDTHS = (94, 76, 58, 60, 50, 66, 50, 72, 124, 0)  # points; 0 = the rest
WRAPPED = (8, 9)  # the event columns that wrap: reason, detail
MAX_LINES = 30  # of one wrapped cell: a row always fits on a page
SUMMARY_WIDTHS = (120, 120, 64, 80, 66, 62, 112, 0)
SPAN_WIDTHS = (110, 110, 80, 100, 110, 0)
PROGRESS_EVERY = 500

_app = None  # the application made here when the caller had none (the CLI)


def ensure_gui_app() -> None:
    """Fonts and the PDF engine need a QGuiApplication; headless callers get an offscreen one. A
    QApplication, not a bare QGuiApplication: a process may open windows after exporting (tests do),
    and Qt allows one application object per process, of the kind the first caller chose."""
    global _app
    if QGuiApplication.instance() is None:
        from PySide6.QtWidgets import QApplication

        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _app = QApplication([])


def _widths(spec) -> list[float]:
    fixed = sum(spec)
    return [w or (WIDTH - fixed) for w in spec]


def _font(size: float, bold: bool = False, family: str = FAMILY) -> QFont:
    f = QFont(family)
    f.setPointSizeF(size)
    f.setBold(bold)
    f.setHintingPreference(QFont.PreferNoHinting)
    return f


class _Pages:
    """Places fixed-height lines top to bottom, starting new pages; with `painter` None it only
    counts pages (the dry run that tells "of M")."""

    def __init__(self, writer, painter, report: Report, total: int | None):
        self.writer, self.p, self.report, self.total = writer, painter, report, total
        self.page, self.y = 0, TOP
        self.header = None  # (cells, widths, row options) of the table being continued
        self.body = _font(8)
        self.small = _font(7)
        self.bold = _font(8, True)
        self.fm, self.wide = {}, {}
        self.colors = {c: QColor(c) for c in (INK, MUTED, GOOD, BAD)}

    # -- geometry -------------------------------------------------------------------------------
    def metrics(self, font: QFont) -> QFontMetricsF:
        key = (font.family(), font.pointSizeF(), font.bold())
        if key not in self.fm:
            self.fm[key] = QFontMetricsF(font, self.writer)
        return self.fm[key]

    def widest(self, font: QFont) -> float:
        """An upper bound for one character's width in `font` (Latin, digits, @, dashes)."""
        key = (font.family(), font.pointSizeF(), font.bold())
        if key not in self.wide:
            fm = self.metrics(font)
            self.wide[key] = max(fm.horizontalAdvance(c) for c in "WM@—%_…")
        return self.wide[key]

    def room(self) -> float:
        return PAGE_H - BOTTOM - self.y

    def new_page(self, continued: str = "") -> None:
        if self.page:
            if self.p:
                self.writer.newPage()
        self.page += 1
        self.y = TOP
        if self.p:
            self.footer()
        if continued:
            self.text(continued, _font(8), MUTED, h=14)
        if self.header:
            cells, widths, kw = self.header
            self.row(cells, widths, head=True, **kw)

    def need(self, h: float, continued: str = "") -> None:
        if self.page == 0 or self.room() < h:
            self.new_page(continued)

    # -- drawing --------------------------------------------------------------------------------
    def footer(self) -> None:
        p, r = self.p, self.report
        y = PAGE_H - BOTTOM + 14
        p.setPen(QPen(QColor(RULE), 0.6 * PT))
        p.drawLine(QPointF(LEFT * PT, (y - 10) * PT), QPointF((PAGE_W - RIGHT) * PT, (y - 10) * PT))
        p.setFont(self.small)
        p.setPen(QColor(MUTED))
        chain = f"chain head {r.head_hash}" if r.head_hash else "chain not verified"
        if r.verdict is not None and not r.verdict.ok:
            chain = "chain BROKEN · last good hash " + r.head_hash
        p.drawText(QPointF(LEFT * PT, y * PT), f"Berth audit report · {short_ts(r.generated_at)} UTC · {chain}")
        label = f"page {self.page} of {self.total}" if self.total else f"page {self.page}"
        w = self.metrics(self.small).horizontalAdvance(label)
        p.drawText(QPointF((PAGE_W - RIGHT) * PT - w, y * PT), label)

    def text(self, s: str, font: QFont, color: str = INK, h: float = 14, x: float = LEFT) -> None:
        if self.p:
            fm = self.metrics(font)
            self.p.setFont(font)
            self.p.setPen(QColor(color))
            s = fm.elidedText(s, Qt.ElideRight, (PAGE_W - RIGHT - x) * PT)
            self.p.drawText(QPointF(x * PT, (self.y + h * 0.72) * PT), s)
        self.y += h

    def row(self, cells, widths, head=False, stripe=False, right_from=99, colors=None, h=None, fits=(),
            wrapped=None) -> None:
        """One line of a table; cells in columns listed in `fits` (times) are known to fit. `wrapped`
        maps a column to its lines (see wrap): the row is as tall as the most lines."""
        lines = max(map(len, wrapped.values()), default=1) if wrapped else 1
        h = h or (14 if head else ROW_H * max(1, lines))
        p = self.p
        if p:
            font = self.bold if head else self.body
            fm = self.metrics(font)
            if head or stripe:
                p.fillRect(QRectF(LEFT * PT, self.y * PT, WIDTH * PT, h * PT), QColor(HEAD_BG if head else STRIPE))
            p.setFont(font)
            base = (self.y + (ROW_H if wrapped else h) * 0.72) * PT  # of the first line
            x = LEFT
            pen = INK
            p.setPen(self.colors[INK])
            wide = self.widest(font)
            for i, (text, w) in enumerate(zip(cells, widths)):
                if not text:
                    x += w
                    continue
                color = (colors or {}).get(i, INK)
                if color != pen:
                    p.setPen(self.colors[color])
                    pen = color
                if wrapped and i in wrapped:
                    for k, line in enumerate(wrapped[i]):
                        p.drawText(QPointF((x + 3) * PT, base + k * ROW_H * PT), line)
                    x += w
                    continue
                room = (w - 6) * PT
                # measuring is as dear as drawing: only text that might not fit is measured
                if i not in fits and len(text) * wide > room and fm.horizontalAdvance(text) > room:
                    text = fm.elidedText(text, Qt.ElideRight, room)
                if i >= right_from:
                    p.drawText(QPointF((x + w - 3) * PT - fm.horizontalAdvance(text), base), text)
                else:
                    p.drawText(QPointF((x + 3) * PT, base), text)
                x += w
            if head:
                p.setPen(QPen(QColor(RULE), 0.6 * PT))
                p.drawLine(QPointF(LEFT * PT, (self.y + h) * PT), QPointF((PAGE_W - RIGHT) * PT, (self.y + h) * PT))
        self.y += h

    def wrap(self, text: str, width: float) -> list[str]:
        """`text` as the lines that fit `width` points in the body font: its own line breaks kept,
        broken at spaces, and inside a word only when the word alone is wider; at most MAX_LINES."""
        fm, room = self.metrics(self.body), (width - 6) * PT
        wide = self.widest(self.body)
        out: list[str] = []
        for para in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            para = para.replace("\t", "    ").rstrip()
            if len(para) * wide <= room or fm.horizontalAdvance(para) <= room:
                out.append(para)
                continue
            line = ""
            for word in para.split(" "):
                candidate = f"{line} {word}" if line else word
                if fm.horizontalAdvance(candidate) <= room:
                    line = candidate
                    continue
                if line:
                    out.append(line)
                while fm.horizontalAdvance(word) > room:  # a word wider than the column: cut it
                    cut = len(word) - 1
                    while cut > 1 and fm.horizontalAdvance(word[:cut]) > room:
                        cut -= 1
                    out.append(word[:cut])
                    word = word[cut:]
                line = word
            out.append(line)
        if len(out) > MAX_LINES:
            rest = len(out) - MAX_LINES + 1
            out = out[:MAX_LINES - 1] + [f"… ({rest} more lines)"]
        return out

    def heading(self, s: str, continued: str = "") -> None:
        self.header = None
        self.need(60, continued)
        if self.y > TOP:
            self.y += 8
        if self.p:
            self.p.setPen(QPen(QColor(ACCENT), 1.2 * PT))
            self.p.drawLine(QPointF(LEFT * PT, (self.y + 22) * PT), QPointF((PAGE_W - RIGHT) * PT, (self.y + 22) * PT))
        self.text(s, _font(14, True), INK, h=28)

    def table(self, title: str, header, widths, rows: Iterable, **kw) -> None:
        """A sub-table under a small title; its header is repeated after a page break."""
        self.header = None
        self.need(16 + 14 + 3 * ROW_H, "")
        if title:
            self.y += 4
            self.text(title, _font(9.5, True), INK, h=16)
        self.header = (header, widths, {"right_from": kw.get("right_from", 99)})
        self.row(header, widths, head=True, right_from=kw.get("right_from", 99))
        for i, cells in enumerate(rows):
            if self.room() < ROW_H:
                self.new_page(f"{title} (continued)" if title else "")
            self.row(cells, widths, stripe=i % 2 == 1, **kw)
        self.header = None


def _title_page(pg: _Pages, r: Report) -> None:
    pg.new_page()
    p = pg.p
    pg.y = TOP + 40
    pg.text("Berth audit report", _font(28, True), INK, h=40)
    pg.text(r.period_text, _font(14), MUTED, h=26)
    if p:
        p.setPen(QPen(QColor(ACCENT), 2 * PT))
        p.drawLine(QPointF(LEFT * PT, pg.y * PT), QPointF((LEFT + 120) * PT, pg.y * PT))
    pg.y += 22
    t = r.totals()
    facts = [("Events", r.seen_text), ("Filter", r.filter_text), ("Servers", _listing(r.servers)),
             ("Models", _listing(r.models)), ("Exported by", r.exported_by or "—"),
             ("Generated", f"{short_ts(r.generated_at)} UTC"),
             ("Deploys", f"{t.deploys_ok:,} ok, {t.deploys_failed:,} failed, {t.interrupted:,} interrupted"),
             ("Rollbacks", f"{t.rollbacks:,} by an operator, {t.auto_rollbacks:,} automatic"),
             ("Mean time to recovery", t.mttr_text)]
    label, value = _font(10), _font(10.5)
    for k, v in facts:
        if p:
            p.setFont(label)
            p.setPen(QColor(MUTED))
            p.drawText(QPointF(LEFT * PT, (pg.y + 18 * 0.72) * PT), k)
        pg.text(v, value, INK, h=18, x=LEFT + 150)
    pg.y += 16
    v = r.verdict
    ok = v is not None and v.ok
    color = GOOD if ok else (MUTED if v is None else BAD)
    lines = [(f"✔  {v.message}" if ok else "?  chain not verified" if v is None
              else f"✘  audit chain BROKEN: {v.problem}", _font(12, True), color, 22)]
    if v is not None and not ok:
        bad = v.first_bad or {}
        where = (f"first bad event: #{bad.get('seq')} · {short_ts(str(bad.get('ts', '')))} · {bad.get('action', '?')}"
                 f" · id {bad.get('id', '?')}" if bad else "at the end of the log")
        lines.append((f"{where} · {v.checked:,} events before it are intact", _font(9.5), INK, 16))
    label = "head hash" if ok else "last good hash"
    lines.append((f"{label}  {r.head_hash or '—'}", _font(9, family=MONO), INK, 16))
    height = 16 + sum(h for *_, h in lines)
    box = QRectF(LEFT * PT, pg.y * PT, WIDTH * PT, height * PT)
    if p:
        p.setPen(QPen(QColor(color), 1.5 * PT))
        p.setBrush(QColor("#eaf6ed") if ok else QColor("#fdecea") if v is not None else Qt.NoBrush)
        p.drawRoundedRect(box, 4 * PT, 4 * PT)
        p.setBrush(Qt.NoBrush)
    pg.y += 8
    for text, font, ink, h in lines:
        pg.text(text, font, ink, h=h, x=LEFT + 12)
    pg.y += 24
    pg.text("Compare the head hash with \"berth audit verify\" on the same log: equal means this report shows "
            "the log as it is.", _font(8.5), MUTED, h=14)
    pg.text("Times are UTC. Interrupted: a deploy that started and never recorded an outcome.", _font(8.5), MUTED,
            h=14)


def _listing(names: list[str], limit: int = 100) -> str:
    if not names:
        return "—"
    text = ", ".join(names)
    return text if len(text) <= limit else text[:limit].rsplit(", ", 1)[0] + f", … ({len(names)} in all)"


def _front_matter(pg: _Pages, r: Report) -> None:
    _title_page(pg, r)
    pg.header = None
    pg.new_page()
    pg.heading("Summary")
    if r.summaries:
        rows = [summary_cells(s) for s in r.summaries]
        if len(r.summaries) > 1:
            rows.append(summary_cells(r.totals()))
        pg.table("Per server and model", list(SUMMARY_COLUMNS), _widths(SUMMARY_WIDTHS), rows, right_from=2)
        pg.text("Mean time to recovery: from a failed deploy to the next successful deploy, rollback or automatic "
                "rollback of the same model on the same server; n/a when there was none.", pg.small, MUTED, h=14)
    else:
        pg.text("No deploys or rollbacks in this period.", pg.body, MUTED)
    pg.heading("Version timeline", "Version timeline (continued)")
    if not r.timelines:
        pg.text("No version changes in this period.", pg.body, MUTED)
    for (server, model), spans in r.timelines.items():
        pg.table(f"{model} on {server or '—'}", list(SPAN_COLUMNS),
                 _widths(SPAN_WIDTHS), (span_cells(s) for s in spans), fits=(0, 1))


def write_pdf(report: Report, events: Iterable[dict], path, progress: Callable[[int, int], None] | None = None) -> int:
    """Draw `report` and then `events` (oldest first; read once, their cells kept for the two layouts)
    to `path`; returns the rows drawn."""
    ensure_gui_app()
    writer = QPdfWriter(str(path))
    writer.setResolution(DPI)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.A4), QPageLayout.Landscape, QMarginsF(0, 0, 0, 0)))
    writer.setTitle("Berth audit report")
    writer.setCreator("Berth")

    dry = _Pages(writer, None, report, None)
    widths = _widths(EVENT_WIDTHS)
    rows = []  # (cells, wrapped lines, colors) of every event: wrapped once, laid out twice
    for e in events:
        cells = event_cells(e)
        wrapped = {i: dry.wrap(cells[i], widths[i]) for i in WRAPPED if cells[i]}
        state = cells[6]
        colors = {6: BAD} if state in ("failed", "interrupted") else ({6: GOOD} if state == "ok" else None)
        rows.append((cells, {i: ls for i, ls in wrapped.items() if len(ls) > 1 or ls[0] != cells[i]}, colors))
    _front_matter(dry, report)
    _events(dry, rows, widths)
    total = dry.page

    painter = QPainter()
    if not painter.begin(writer):
        raise OSError(f"cannot write a PDF to {path}")
    try:
        pg = _Pages(writer, painter, report, total)
        _front_matter(pg, report)
        n = _events(pg, rows, widths, progress, report.count)
    finally:
        painter.end()
    return n


def _events(pg: _Pages, rows: list, widths, progress=None, count: int = 0) -> int:
    """The event table, after the front matter; the same layout for the dry run and the drawing."""
    pg.header = None
    pg.new_page()
    pg.heading("Events")
    header = [c for c, _ in EVENT_COLUMNS]
    pg.header = (header, widths, {})
    pg.row(header, widths, head=True)
    n = 0
    for cells, wrapped, colors in rows:
        h = ROW_H * max(map(len, wrapped.values()), default=1) if wrapped else ROW_H
        if pg.room() < h:
            pg.new_page("Events (continued)")
        pg.row(cells, widths, stripe=n % 2 == 1, colors=colors, fits=(0,), wrapped=wrapped or None)
        n += 1
        if progress and n % PROGRESS_EVERY == 0:
            progress(n, count)
    if not n:
        pg.text("No events match.", pg.body, MUTED)
    pg.y += 6
    pg.text(f"{n:,} events · end of report", pg.small, MUTED)
    if progress:
        progress(n, count)
    return n
