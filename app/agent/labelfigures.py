"""Live accuracy (labels) or mean absolute error (numbers) per version: the request log joined with
the labels file by request id (docs/experiments.md, "Labels and accuracy").

Memory is bounded by the labels file (rotated, like the request log) and, for `samples`, a capped
list of absolute errors per version; the request log itself is streamed, never held.

Which figure: a version whose matched predictions and labels are all numbers, at least one of them
not a whole number, gets the MAE; any other (strings, class numbers 0/1/2) gets the accuracy, a
prediction being correct when it equals the label (numbers compared as numbers)."""
import json
import math
import os
import time

from .feedback import LABELS_FILE, lines

# the keys a model's answer names its prediction by, in this order ({"class": ...}, {"label": ...})
PREDICTION_KEYS = ("label", "class", "prediction", "predicted", "value", "y", "output")
MAX_SAMPLES = 10000


def label_figures(model_dir, versions=None, since=None, samples=False):
    """{version: {"labelled", "accuracy" | "mae", "correct" (accuracy), "abs_errors" (with samples),
    "ambiguous" (labelled ids logged for more than one request, counted for no one; only when > 0)}}
    for each of `versions` (all versions seen when None) over requests logged at or after `since`
    (a UNIX time). A version with no labelled request has {"labelled": 0}."""
    logs = model_dir if isinstance(model_dir, str) else model_dir.path
    logs = os.path.join(logs, "logs")
    labels = {}
    for item in lines(os.path.join(logs, LABELS_FILE)):
        rid = item.get("request_id")
        if isinstance(rid, str) and "label" in item:
            labels[rid] = item["label"]  # the last label given wins
    acc = dict((v, _Tally()) for v in (versions or ()))
    for rid, version, pred in attached(os.path.join(logs, "requests.jsonl"), labels, versions, since, acc):
        acc.setdefault(version, _Tally()).add(pred, labels[rid])
    return dict((v, t.figures(samples)) for v, t in acc.items())


def attached(request_log, labels, versions, since, acc, with_ts=False):
    """(request id, version, prediction) for each logged answer a label counts for: a label attaches
    to exactly one answered request (and, in shadow mode, B's copy of it). An id the log holds for
    two requests (a client reused its X-Request-Id) is ambiguous: it counts for no one, and each
    version it was logged for gets it in "ambiguous" (a reused id must not inflate the figures).
    Ambiguity is judged on every logged line, before `versions` and `since` choose which count."""
    seen = {}  # id -> {"": [count, answer] for the answered request, version: [count, answer] per shadow}
    for item in lines(request_log, labels):
        version, rid, status, ts = item.get("version"), item.get("request_id"), item.get("status"), item.get("ts")
        if not (isinstance(version, str) and isinstance(rid, str) and rid in labels and _whole(status)
                and (_whole(ts) or isinstance(ts, float))):
            continue  # a foreign line (a version, status or time of another type) is no one's request
        slot = seen.setdefault(rid, {}).setdefault(version if item.get("shadow") is True else "", [0, None])
        slot[0] += 1
        slot[1] = (version, ts, status, item.get("output"))
    for rid, slots in seen.items():
        main = slots.pop("", [0, None])
        ok = main[0] == 1 and all(n == 1 and v != main[1][0] for v, (n, _) in slots.items())
        for count, answer in [main] + list(slots.values()):
            if answer is None:
                continue
            version, ts, status, output = answer
            if (versions is not None and version not in acc) or (since is not None and ts < since):
                continue
            if not ok:
                acc.setdefault(version, _Tally()).ambiguous += 1
                continue
            pred = predicted(output) if status == 200 else None
            if pred is not None:
                yield (rid, version, pred, ts) if with_ts else (rid, version, pred)


MAX_POINTS = 2000  # buckets per version in a series: a window / bucket_s beyond this is refused


def label_series(model_dir, since, bucket_s, versions=None):
    """Accuracy or MAE per version over time, for the monitoring graphs: the labelled requests
    (the same rule as label_figures) grouped by when they were answered, in buckets of `bucket_s`
    seconds from `since`. -> {version: {"figure": "accuracy" | "mae", "points": [[bucket middle
    (UNIX time), labelled, value], ...]}}; the figure is the version's over the whole window, so one
    version's line is one kind of number."""
    logs = os.path.join(model_dir if isinstance(model_dir, str) else model_dir.path, "logs")
    labels = {}
    for item in lines(os.path.join(logs, LABELS_FILE)):
        if isinstance(item.get("request_id"), str) and "label" in item:
            labels[item["request_id"]] = item["label"]
    acc = dict((v, _Tally()) for v in (versions or ()))
    buckets = {}
    for rid, version, pred, ts in attached(os.path.join(logs, "requests.jsonl"), labels, versions, since, acc, True):
        acc.setdefault(version, _Tally()).add(pred, labels[rid])
        at = int((ts - since) // bucket_s)
        buckets.setdefault(version, {}).setdefault(at, _Tally()).add(pred, labels[rid])
    out = {}
    for version, tally in acc.items():
        whole = tally.figures(False)
        figure = "mae" if "mae" in whole else "accuracy"
        points = []
        for at, t in sorted((buckets.get(version) or {}).items()):
            value = t.abs_sum / t.labelled if figure == "mae" else t.correct / t.labelled
            points.append([round(since + (at + 0.5) * bucket_s, 3), t.labelled, value])
        out[version] = {"figure": figure, "points": points}
    return out


def predicted(output):
    """The prediction in a logged answer: a bare scalar, a one-element list, or the first of
    PREDICTION_KEYS (else the only key) of an object; None when there is none (cut, an error)."""
    try:
        value = json.loads(output) if isinstance(output, str) else output
    except ValueError:
        return None
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict):
        if "error" in value:
            return None
        key = next((k for k in PREDICTION_KEYS if k in value), None)
        if key is None and len(value) == 1:
            key = next(iter(value))
        value = value.get(key) if key is not None else None
    if isinstance(value, bool):
        return json.dumps(value)
    return value if isinstance(value, (str, int, float)) else None


def _whole(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _number(x):
    """A finite number from a JSON number or a numeric string (labels from a CSV are strings)."""
    if isinstance(x, bool) or not isinstance(x, (str, int, float)):
        return None
    try:
        f = float(x)
    except (ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


class _Tally:
    def __init__(self):
        self.labelled = self.correct = self.ambiguous = 0
        self.numeric = self.fractional = 0
        self.abs_sum = 0.0
        self.abs_errors = []

    def add(self, pred, label):
        self.labelled += 1
        p, t = _number(pred), _number(label)
        if p is not None and t is not None:
            self.numeric += 1
            self.fractional += p != int(p) or t != int(t)
            self.correct += p == t
            err = abs(p - t)
            self.abs_sum += err
            if len(self.abs_errors) < MAX_SAMPLES:
                self.abs_errors.append(err)
        else:
            self.correct += str(pred) == str(label)

    def figures(self, samples):
        out = self._figures(samples)
        if self.ambiguous:
            out["ambiguous"] = self.ambiguous
        return out

    def _figures(self, samples):
        if not self.labelled:
            return {"labelled": 0}
        if self.numeric == self.labelled and self.fractional:
            out = {"labelled": self.labelled, "mae": self.abs_sum / self.labelled}
            if samples:
                out["abs_errors"] = list(self.abs_errors)
            return out
        return {"labelled": self.labelled, "accuracy": self.correct / self.labelled, "correct": self.correct}


def feedback_figures(ctx, req):
    """The agent command: {"model", "versions"?, "since"?, "bucket_s"?} -> {"versions": label_figures(...)},
    and with "since" and "bucket_s" also {"series": label_series(...)} (the monitoring graphs)."""
    from .layout import AgentError, check_version

    model = ctx.root.model(req["model"])
    if not os.path.isdir(model.releases):
        raise AgentError("there is no model %s on this server" % req["model"], "not_found")
    versions = req.get("versions")
    if versions is not None:
        versions = [check_version(v) for v in versions]
    since = req.get("since")
    if since is not None and (isinstance(since, bool) or not isinstance(since, (int, float))):
        raise AgentError("since must be a UNIX time", "usage")
    out = {"versions": label_figures(model, versions, since)}
    bucket = req.get("bucket_s")
    if bucket is not None:
        if isinstance(bucket, bool) or not isinstance(bucket, (int, float)) or not bucket >= 1 or since is None:
            raise AgentError("bucket_s must be a number of seconds (at least 1), with since", "usage")
        if (time.time() - since) / bucket > MAX_POINTS:
            raise AgentError("at most %d buckets: choose a bigger bucket_s for that window" % MAX_POINTS, "usage")
        out["series"] = label_series(model, since, bucket, versions)
    return out


COMMANDS = {"feedback_figures": feedback_figures}
