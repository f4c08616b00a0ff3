"""`berth feedback MODEL --server S --file labels.csv`: ground truth for logged requests (columns
request_id,label); without --file, each version's live accuracy or MAE from the labels so far.

The whole file is checked here first: one bad row refuses the file with every bad line named (the
first ten), and nothing is sent. It then goes in chunks of feedback.MAX_ITEMS with a progress
line each; a label sent twice is harmless (the last one for an id wins), so a cut transfer is
simply run again."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

from app.agent import feedback

from . import options
from .base import Command, Failed, workspace
from .output import print_json, print_table

MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_ROWS = 2_000_000
SHOWN_BAD_ROWS = 10


def read_labels(path: str) -> list[list[str]]:
    """[[request_id, label], ...] from the CSV file, or Failed naming its bad lines."""
    file = Path(path).expanduser()
    try:
        size = file.stat().st_size
    except OSError as e:
        raise Failed(f"--file {path}: {e.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise Failed(f"--file {path}: {size} bytes, over {MAX_FILE_BYTES // 2**20} MB; split it into smaller files")
    rows, bad = [], []
    try:
        with file.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["request_id", "label"]:
                raise Failed(f"--file {path}: the first line must be the header request_id,label")
            for fields in reader:
                if not fields:
                    continue
                problem = _problem(fields)
                if problem:
                    bad.append(f"line {reader.line_num}: {problem}")
                else:
                    rows.append([fields[0], fields[1]])
                if len(rows) + len(bad) > MAX_ROWS:
                    raise Failed(f"--file {path}: over {MAX_ROWS} rows; split it into smaller files")
    except UnicodeDecodeError as e:
        raise Failed(f"--file {path}: not UTF-8 text (byte {e.start}); nothing was sent") from None
    except csv.Error as e:
        raise Failed(f"--file {path}: line {reader.line_num}: {e}; nothing was sent") from None
    if bad:
        more = f" (and {len(bad) - SHOWN_BAD_ROWS} more)" if len(bad) > SHOWN_BAD_ROWS else ""
        raise Failed(f"--file {path}: {len(bad)} bad row(s), nothing was sent: "
                     + "; ".join(bad[:SHOWN_BAD_ROWS]) + more)
    if not rows:
        raise Failed(f"--file {path}: no labels in it (only the header)")
    return rows


def _problem(fields: list[str]) -> str:
    if len(fields) != 2:
        return f"expected 2 columns (request_id,label), found {len(fields)}"
    try:
        feedback.check_id(fields[0])
        feedback.check_label(fields[1])
    except feedback.BadFeedback as e:
        return str(e)
    return ""


class FeedbackCommand(Command):
    name = "feedback"
    help = "send labels for logged requests (--file labels.csv), or show each version's live accuracy / MAE"

    def add_arguments(self, parser) -> None:
        parser.add_argument("model", metavar="MODEL")
        options.add_server(parser, required=True)
        parser.add_argument("--file", metavar="FILE.csv", help="columns request_id,label (a header line first)")
        options.add_json(parser)

    def run(self, args) -> int:
        rows = read_labels(args.file) if args.file else None
        ws = workspace()
        server = ws.servers.get(args.server)
        with ws.connect(server.name) as t:
            if rows is None:
                return _show(t.agent("feedback_figures", {"model": args.model})["versions"], args)
            accepted = unknown = 0
            examples: list[str] = []
            step = feedback.MAX_ITEMS
            for start in range(0, len(rows), step):
                got = t.agent("feedback_add", {"model": args.model, "labels": rows[start:start + step]})
                accepted, unknown = accepted + got["accepted"], unknown + got["unknown"]
                examples += got["unknown_ids"][: 5 - len(examples)]
                if len(rows) > step:
                    print(f"sent {min(start + step, len(rows))} of {len(rows)} labels", file=sys.stderr, flush=True)
        result = {"server": server.name, "model": args.model, "accepted": accepted, "unknown": unknown,
                  "unknown_ids": examples}
        if args.json:
            print_json(result)
        else:
            print(f"{args.model} on {server.name}: {accepted} label(s) kept")
        if unknown:
            print(f"berth: {unknown} label(s) name request ids not in the request log (e.g. {', '.join(examples)}); "
                  f"they were not kept", file=sys.stderr)
        return 0


def _show(versions: dict, args) -> int:
    rows = [{"version": v, "labelled": f["labelled"],
             "accuracy": "" if "accuracy" not in f else f"{f['accuracy']:.4f}",
             "mae": "" if "mae" not in f else f"{f['mae']:.6g}"} for v, f in sorted(versions.items())]
    if args.json:
        print_json(versions)
    elif not rows:
        print(f"{args.model}: no labelled requests yet (send some with --file labels.csv or POST /feedback)")
    else:
        print_table(rows, ["version", "labelled", "accuracy", "mae"])
    return 0
