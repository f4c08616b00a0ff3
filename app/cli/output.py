"""How the command line shows progress and tables: progress on stderr, data on stdout. Only the
CLI prints; byte sizes come from app/formatting.py, shared with the console."""
import json
import sys

from app.deploy.progress import Progress
from app.formatting import human_bytes


class ProgressPrinter:
    """One line per step, in order; upload shown as bytes, speed and percent; pip output with
    --verbose. The agent also reports a step's end (`venv` again, once its requirements are in):
    a line already shown is not shown again, so the steps read as they happened."""

    def __init__(self, verbose: bool = False, stream=None):
        self.stream = stream or sys.stderr
        self.verbose = verbose
        self.tty = self.stream.isatty()
        self.last_step = None
        self.last_pct = -1
        self.shown: set[tuple[str, str]] = set()

    def __call__(self, p: Progress) -> None:
        if p.line is not None:
            if self.verbose:
                self._print(f"    | {p.line}")
            return
        if p.step == "upload" and p.done is not None and p.total:
            pct = int(100 * p.done / p.total)
            text = f"  {p.label}: {human_bytes(p.done)} of {human_bytes(p.total)}"
            if p.rate:
                text += f", {human_bytes(p.rate)}/s"
                if p.done < p.total:
                    text += f", {max(1, round((p.total - p.done) / p.rate))} s left"
            if self.tty:
                self.stream.write(f"\r{text} ({pct}%)\033[K")
                self.stream.flush()
                if p.done >= p.total:
                    self.stream.write("\n")
            elif pct // 25 != self.last_pct // 25:
                self._print(f"{text} ({pct}%)")
            self.last_pct = pct
            return
        if p.step == "assemble" and p.step == self.last_step:
            return
        self.last_step = p.step
        if (p.step, p.message) in self.shown:
            return
        self.shown.add((p.step, p.message))
        self._print(f"  {p.label}" + (f": {p.message}" if p.message else ""))

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_table(rows: list[dict], columns: list[str]) -> None:
    if not rows:
        print("(none)")
        return
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
