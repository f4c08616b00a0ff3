"""Below the Releases table: what changed between the selected release and the current one (or, for
the current one, the release before it) — metrics with deltas, parameters, data set, code commit,
requirements and files, the same comparison as `berth diff`."""
from html import escape

from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from app.deploy.release_diff import ReleaseDiff, signed, value

BETTER, WORSE = "#188038", "#d93025"


def diff_html(d: ReleaseDiff) -> str:
    p = d.plan
    parts = []
    if d.same_content:
        parts.append("<p>The same bundle content (sha256 %s).</p>" % escape((d.new_sha256 or "")[:12]))
    if p.metrics:
        rows = "".join(_metric_row(m) for m in p.metrics)
        parts.append("<table cellspacing=0 cellpadding=3><tr><th align=left>Metric</th><th align=right>%s</th>"
                     "<th align=right>%s</th><th align=right>Change</th></tr>%s</table>"
                     % (escape(p.old_version or ""), escape(p.new_version), rows))
    if p.params:
        parts.append("<p><b>Parameters</b><br>" + "<br>".join(
            "%s: %s → <b>%s</b>" % (escape(c.name), escape(value(c.old)), escape(value(c.new))) for c in p.params) + "</p>")
    else:
        parts.append("<p><b>Parameters</b>: the same</p>")
    facts = []
    ds = p.dataset
    if ds.changed:
        facts.append("data set %s → <b>%s</b>" % (escape(_data(ds.old_dataset, ds.old_sha256)),
                                                 escape(_data(ds.new_dataset, ds.new_sha256))))
    if p.code_commit.changed:
        facts.append("code commit %s → <b>%s</b>" % (escape(value(p.code_commit.old)), escape(value(p.code_commit.new))))
    if facts:
        parts.append("<p>" + "<br>".join(facts) + "</p>")
    if d.requirements:
        parts.append("<p><b>Requirements</b><br>" + "<br>".join(
            "%s → <b>%s</b>" % (escape(r.old or "(none)"), escape(r.new or "(removed)")) for r in d.requirements) + "</p>")
    files = [("+", f) for f in d.files_added] + [("−", f) for f in d.files_removed] + [("~", f) for f in d.files_changed]
    if files:
        shown = "<br>".join("%s %s" % (mark, escape(f)) for mark, f in files[:30])
        more = "<br>… and %d more" % (len(files) - 30) if len(files) > 30 else ""
        parts.append("<p><b>Files</b>: %d added, %d removed, %d changed<br>%s%s</p>"
                     % (len(d.files_added), len(d.files_removed), len(d.files_changed), shown, more))
    return "".join(parts)


def _metric_row(m) -> str:
    if m.old is None:
        change, color = "new", ""
    elif m.new is None:
        change, color = "removed", ""
    elif m.delta is not None and m.changed:
        change, color = signed(m.delta), {True: BETTER, False: WORSE, None: ""}[m.improved]
    else:
        change, color = ("changed" if m.changed else ""), ""
    style = " style='color:%s'" % color if color else ""
    return ("<tr><td>%s</td><td align=right>%s</td><td align=right>%s</td><td align=right%s>%s</td></tr>"
            % (escape(m.name), escape(value(m.old)), escape(value(m.new)), style, escape(change)))


def _data(name, sha) -> str:
    return "%s (%s)" % (name or "?", sha[:12]) if sha else (name or "not recorded")


class ReleaseDiffView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel()
        self.title.setObjectName("releaseDiffTitle")
        self.text = QTextBrowser()
        self.text.setObjectName("releaseDiff")
        self.text.setOpenLinks(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.text, 1)
        self.clear()

    def clear(self) -> None:
        self.title.setText("<b>What changed</b>: select a release to compare it with the current one")
        self.text.setHtml("")

    def show_waiting(self, old: str, new: str) -> None:
        self.title.setText(f"<b>What changed</b> from {escape(old)} to {escape(new)}: asking the server…")
        self.text.setHtml("")

    def show_diff(self, d: ReleaseDiff) -> None:
        self.title.setText(f"<b>What changed</b> from {escape(d.plan.old_version or '')} to {escape(d.plan.new_version)}")
        self.text.setHtml(diff_html(d))

    def show_error(self, text: str) -> None:
        self.title.setText("<b>What changed</b>: " + escape(text))
        self.text.setHtml("")
