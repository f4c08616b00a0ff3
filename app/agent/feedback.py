"""Ground truth that arrives later: labels for logged requests (docs/experiments.md, "Labels and accuracy").

`POST /feedback` on the stable endpoint (the runner hands the request to `serve`) and the agent
command `feedback_add` (`berth feedback MODEL --file labels.csv`) append {"request_id", "label"}
lines to logs/labels.jsonl, next to the request log and rotated like it, so it stays bounded. Both
keep only labels whose request id is in the request log (the others are counted as unknown), so a
flood of made-up ids cannot push real labels out. The last label given for an id wins, so sending a
file twice is harmless. Everything is refused whole when one item is malformed.
"""
import json
import math
import os
import threading
import time

from .layout import AgentError
from .requestid import _TOKEN
from . import requestlog
from .requestlog import RequestLog

LABELS_FILE = "labels.jsonl"
MAX_BODY = 1024 * 1024  # POST /feedback: a label is a few bytes, a megabyte is thousands of them
MAX_ITEMS = 10000  # labels per POST or per agent call (the CLI sends a big file in chunks of this)
MAX_LABEL_CHARS = 256


class BadFeedback(ValueError):
    pass


def labels_path(request_log_path):
    return os.path.join(os.path.dirname(request_log_path), LABELS_FILE)


def parse(data):
    """[(request_id, label)] from {"request_id", "label"} or a list of them; BadFeedback naming the
    first bad item otherwise. A label is a string, or a finite number (not a bool)."""
    items = data if isinstance(data, list) else [data]
    if not items:
        raise BadFeedback("no labels given: send {\"request_id\": ..., \"label\": ...} or a list of them")
    if len(items) > MAX_ITEMS:
        raise BadFeedback("%d labels at once; send at most %d per request" % (len(items), MAX_ITEMS))
    out = []
    for i, item in enumerate(items):
        where = "item %d: " % i if isinstance(data, list) else ""
        if not isinstance(item, dict) or set(item) != {"request_id", "label"}:
            raise BadFeedback(where + "expected an object with exactly \"request_id\" and \"label\"")
        out.append((check_id(item["request_id"], where), check_label(item["label"], where)))
    return out


def check_id(rid, where=""):
    if not isinstance(rid, str) or not _TOKEN.match(rid):
        raise BadFeedback(where + "request_id must be a plain token (letters, digits, . _ : -; at most 64)")
    return rid


def check_label(label, where=""):
    if isinstance(label, bool) or not isinstance(label, (str, int, float)):
        raise BadFeedback(where + "label must be a string or a number")
    if isinstance(label, float) and not math.isfinite(label):
        raise BadFeedback(where + "label must be a finite number")
    if isinstance(label, str) and (not label or len(label) > MAX_LABEL_CHARS or "\n" in label or "\r" in label):
        raise BadFeedback(where + "label must be 1 to %d characters on one line" % MAX_LABEL_CHARS)
    return label


class LabelLog(RequestLog):
    """The labels file: RequestLog's single-write O_APPEND lines and rotation, with its own lines."""

    def __init__(self, path):
        RequestLog.__init__(self, path, None)

    def append(self, pairs):
        ts = round(time.time(), 3)
        data = b"".join(json.dumps({"ts": ts, "request_id": r, "label": label}).encode() + b"\n" for r, label in pairs)
        self.append_bytes(data)


_open_logs = {}
_open_lock = threading.Lock()


def _log_for(path):
    with _open_lock:
        log = _open_logs.get(path)
        if log is None:
            log = _open_logs[path] = LabelLog(path)
        return log


PATH = "/feedback"


def respond(req, request_log_path):
    """POST /feedback in the runner (httploop's request): (status, body, content type, extra headers);
    200 {"accepted", "unknown", "unknown_ids"} (keep_known), 400 for a shape it does not know, 413 over MAX_BODY."""
    too_big = (413, json.dumps({"error": "feedback body over %d bytes; send at most %d labels per request"
                                % (MAX_BODY, MAX_ITEMS)}).encode(), "application/json", "")
    if req.refused is not None:  # the loop's own refusals of the body (length, chunked): their status
        status, message, _ = req.refused
        return too_big if status == 413 else (status, json.dumps({"error": message}).encode(), "application/json", "")
    if len(req.body) > MAX_BODY:
        return too_big
    try:
        pairs = parse(json.loads(req.body or b"null"))
    except (ValueError, RecursionError) as e:  # BadFeedback, JSON errors
        text = str(e) if isinstance(e, BadFeedback) else "feedback is not valid JSON"
        return 400, json.dumps({"error": text}).encode(), "application/json", ""
    answer = keep_known(pairs, request_log_path, _log_for(labels_path(request_log_path)).append)
    return 200, json.dumps(answer).encode(), "application/json", ""


def keep_known(pairs, request_log_path, open_log):
    """Store only labels whose id is in the request log, the last one per id: a flood of labels for
    ids never logged (or one id repeated) must not rotate real labels out of the bounded labels file.
    -> {"accepted", "unknown", "unknown_ids" (the first five, sorted)}. The lookup streams the
    rotated request log (a POST /feedback runs in the model pool's thread, not on the loop)."""
    last = dict(pairs)
    known = logged_ids(request_log_path, set(last))
    kept = [(r, label) for r, label in last.items() if r in known]
    if kept:
        open_log(kept)
    unknown = sum(1 for r, _ in pairs if r not in known)
    return {"accepted": len(pairs) - unknown, "unknown": unknown, "unknown_ids": sorted(set(last) - known)[:5]}


def feedback_add(ctx, req):
    """{"model", "labels": [[request_id, label], ...]} -> {"accepted", "unknown", "unknown_ids"}: only
    labels whose request is in the request log are kept; the others are counted and a few named."""
    model = ctx.root.model(req["model"])
    if not os.path.isdir(model.releases):
        raise AgentError("there is no model %s on this server" % req["model"], "not_found")
    rows = req["labels"]
    if not isinstance(rows, list) or len(rows) > MAX_ITEMS:
        raise AgentError("labels must be a list of at most %d [request_id, label] pairs" % MAX_ITEMS, "usage")
    try:
        pairs = [(check_id(r[0], "row %d: " % i), check_label(r[1], "row %d: " % i)) if isinstance(r, list) and len(r) == 2
                 else _bad_row(i) for i, r in enumerate(rows)]
    except BadFeedback as e:
        raise AgentError(str(e), "usage")
    return keep_known(pairs, model.request_log(), lambda kept: _append_once(model.logs, kept))


def _append_once(logs, kept):
    """Its own handle, closed after: a long-lived agent must not keep a file the runner rotates."""
    os.makedirs(logs, exist_ok=True)
    log = LabelLog(os.path.join(logs, LABELS_FILE))
    try:
        log.append(kept)
    finally:
        log.close()


COMMANDS = {"feedback_add": feedback_add}


def _bad_row(i):
    raise BadFeedback("row %d: expected [request_id, label]" % i)


def rotated(path, keep=None):
    """The log's files, oldest first (path.2, path.1, path)."""
    keep = keep or requestlog.KEEP_FILES
    names = ["%s.%d" % (path, i) for i in range(keep - 1, 0, -1)] + [path]
    return [n for n in names if os.path.exists(n)]


def lines(path, wanted=None):
    """Each JSON object line of a rotated log, oldest first; a torn or foreign line is skipped.
    `wanted`: only lines whose request id is in it, found before the line is parsed (a request
    log line holds up to 8 KB of input and output; parsing only the labelled ones is ~10x faster)."""
    for name in rotated(path):
        try:
            f = open(name, "rb")
        except OSError:
            continue
        with f:
            for line in f:
                if wanted is not None and _raw_id(line) not in wanted:
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if isinstance(item, dict):
                    yield item


_ID_KEY = b'"request_id": "'


def _raw_id(line):
    """The request id as requestlog.py writes it (a plain token needs no escaping), or None."""
    at = line.find(_ID_KEY)
    if at < 0:
        return None
    at += len(_ID_KEY)
    end = line.find(b'"', at)
    return line[at:end].decode("ascii", "replace") if end > 0 else None


def logged_ids(request_log, wanted):
    """Which of `wanted` are in the request log (memory: the wanted set, never the log)."""
    found = set()
    for item in lines(request_log, wanted):
        rid = item.get("request_id")
        if rid in wanted:
            found.add(rid)
    return found
