"""The runner's own counters, exposed in Prometheus text format on /metrics."""
import os
import resource
import threading
import time

from .histogram import BUCKETS, bucket_index

# Berth's own prediction on the input example after a start (app/agent/health.py) goes to this path
# and is counted under its own endpoint label, so requests/s (the sampler reads "/predict" only)
# counts users' requests alone. A query on the same path, not a header: user requests pay nothing.
PROBE_PATH = "/predict?probe=health-check"
PROBE_ENDPOINT = "/predict (health check)"
# why a request was refused (berth_request_rejected_total's reason label): a malformed request or
# not JSON, a body over the limit, JSON of the wrong shape for the model (inputshape.py)
REJECT_REASONS = ("bad_request", "too_large", "invalid_input")


class Counters:
    def __init__(self, model, version):
        self.labels = 'model="%s",version="%s"' % (model, version)
        self.lock = threading.Lock()
        self.started = time.time()
        self.endpoints = {}

    def observe(self, endpoint, seconds, error, rejected=None):
        """`error`: the model failed (5xx); `rejected`: why the client's request was refused (4xx,
        one of REJECT_REASONS), or None. Kept apart so errors/s and its alert mean "the model
        failed", not "someone sent bad JSON"."""
        with self.lock:
            e = self.endpoints.get(endpoint)
            if e is None:
                e = self.endpoints[endpoint] = {"count": 0, "errors": 0, "sum": 0.0,
                                                "rejected": dict.fromkeys(REJECT_REASONS, 0),
                                                "buckets": [0] * (len(BUCKETS) + 1)}
            e["count"] += 1
            e["errors"] += 1 if error else 0
            if rejected:
                e["rejected"][rejected] = e["rejected"].get(rejected, 0) + 1
            e["sum"] += seconds
            e["buckets"][bucket_index(seconds)] += 1

    def snapshot(self):
        """{endpoint: {"count", "errors", "sum", "rejected": {reason: n}, "buckets": [n...]}}: what
        render() prints (workercounters.py sums it over the workers instead)."""
        with self.lock:
            return {k: dict(v, buckets=list(v["buckets"]), rejected=dict(v["rejected"]))
                    for k, v in self.endpoints.items()}

    def render(self):
        snapshot = self.snapshot()
        out = [
            "# HELP berth_requests_total Requests served.",
            "# TYPE berth_requests_total counter",
        ]
        for ep, e in sorted(snapshot.items()):
            out.append('berth_requests_total{%s,endpoint="%s"} %d' % (self.labels, ep, e["count"]))
        out += ["# HELP berth_request_errors_total Requests the model failed (5xx).", "# TYPE berth_request_errors_total counter"]
        for ep, e in sorted(snapshot.items()):
            out.append('berth_request_errors_total{%s,endpoint="%s"} %d' % (self.labels, ep, e["errors"]))
        out += ["# HELP berth_request_rejected_total Requests refused as the client's fault (4xx).",
                "# TYPE berth_request_rejected_total counter"]
        for ep, e in sorted(snapshot.items()):
            for reason, n in sorted(e["rejected"].items()):
                out.append('berth_request_rejected_total{%s,endpoint="%s",reason="%s"} %d' % (self.labels, ep, reason, n))
        out += ["# HELP berth_request_duration_seconds Request latency.", "# TYPE berth_request_duration_seconds histogram"]
        for ep, e in sorted(snapshot.items()):
            lab = '%s,endpoint="%s"' % (self.labels, ep)
            cum = 0
            for le, n in zip(BUCKETS + (None,), e["buckets"]):
                cum += n
                out.append('berth_request_duration_seconds_bucket{%s,le="%s"} %d' % (lab, "+Inf" if le is None else repr(le), cum))
            out.append("berth_request_duration_seconds_sum{%s} %.6f" % (lab, e["sum"]))
            out.append("berth_request_duration_seconds_count{%s} %d" % (lab, e["count"]))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out += [
            "# HELP process_cpu_seconds_total User and system CPU time the runner process has used, in seconds.",
            "# TYPE process_cpu_seconds_total counter",
            "process_cpu_seconds_total %.3f" % (usage.ru_utime + usage.ru_stime),
            "# HELP process_resident_memory_bytes Resident memory of the runner process, in bytes.",
            "# TYPE process_resident_memory_bytes gauge",
            "process_resident_memory_bytes %d" % _rss_bytes(),
            "# HELP process_start_time_seconds When the runner process started, in seconds since the Unix epoch.",
            "# TYPE process_start_time_seconds gauge",
            "process_start_time_seconds %.3f" % self.started,
        ]
        return "\n".join(out) + "\n"


def _rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
