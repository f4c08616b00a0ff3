"""The runner's counters when `[serve] workers = N`: one scrape of /metrics reaches one worker, so
every worker's counts live in one anonymous shared mmap made before the fork, a row per worker. A
worker writes only its own row (no lock across processes; its threads share its Counters lock) and
/metrics prints the sum of all rows. A worker that dies leaves its row, and the one forked in its
place goes on from it, so the totals never go down (a Prometheus counter reset would be a restart).
Sums are kept in integer nanoseconds: an 8-byte aligned store is never seen half-written. The parent
counts the workers it forked again in one more slot after the rows (berth_worker_restarts_total). Stdlib only."""
import mmap
import struct

from .histogram import BUCKETS, bucket_index
from .metrics import PROBE_ENDPOINT, REJECT_REASONS, Counters

ENDPOINTS = ("/predict", PROBE_ENDPOINT)  # the only endpoints Service.observe counts
_COUNT, _ERRORS, _SUM = 0, 1, 2
_REJECTED = 3
_BUCKET0 = _REJECTED + len(REJECT_REASONS)
_FIELDS = _BUCKET0 + len(BUCKETS) + 1  # int64 slots per endpoint
_Q = struct.Struct("q")


class WorkerCounters(Counters):
    """Counters (same /metrics text) over `workers` rows of shared memory; use_row(i) in worker i."""

    def __init__(self, model, version, workers, started=None):
        super().__init__(model, version)
        if started is not None:
            self.started = started  # process_start_time_seconds: the runner's, not a worker's
        self.workers = workers
        self.row_bytes = len(ENDPOINTS) * _FIELDS * 8
        self.restarts_at = self.row_bytes * workers  # the parent's slot, after the workers' rows
        self.mem = mmap.mmap(-1, self.restarts_at + 8)  # MAP_SHARED | MAP_ANONYMOUS: kept across fork
        self.row = 0

    def use_row(self, row):
        self.row = row

    def worker_restarted(self):
        """In the parent, the only writer of its slot."""
        _Q.pack_into(self.mem, self.restarts_at, _Q.unpack_from(self.mem, self.restarts_at)[0] + 1)

    def render(self):
        restarts = _Q.unpack_from(self.mem, self.restarts_at)[0]
        return super().render() + (
            "# HELP berth_worker_restarts_total Worker processes that ended and were forked again.\n"
            "# TYPE berth_worker_restarts_total counter\n"
            "berth_worker_restarts_total{%s} %d\n" % (self.labels, restarts))

    def _add(self, endpoint, field, n):
        at = self.row * self.row_bytes + (ENDPOINTS.index(endpoint) * _FIELDS + field) * 8
        _Q.pack_into(self.mem, at, _Q.unpack_from(self.mem, at)[0] + n)

    def observe(self, endpoint, seconds, error, rejected=None):
        if endpoint not in ENDPOINTS:
            return super().observe(endpoint, seconds, error, rejected)
        with self.lock:
            self._add(endpoint, _COUNT, 1)
            if error:
                self._add(endpoint, _ERRORS, 1)
            if rejected in REJECT_REASONS:
                self._add(endpoint, _REJECTED + REJECT_REASONS.index(rejected), 1)
            self._add(endpoint, _SUM, int(seconds * 1e9))
            self._add(endpoint, _BUCKET0 + bucket_index(seconds), 1)

    def snapshot(self):
        out = super().snapshot()
        totals = [[0] * _FIELDS for _ in ENDPOINTS]
        for row in range(self.workers):
            for e in range(len(ENDPOINTS)):
                at = row * self.row_bytes + e * _FIELDS * 8
                values = struct.unpack_from("%dq" % _FIELDS, self.mem, at)
                totals[e] = [a + b for a, b in zip(totals[e], values)]
        for name, t in zip(ENDPOINTS, totals):
            if t[_COUNT]:
                out[name] = {"count": t[_COUNT], "errors": t[_ERRORS], "sum": t[_SUM] / 1e9,
                             "rejected": dict(zip(REJECT_REASONS, t[_REJECTED:_BUCKET0])),
                             "buckets": list(t[_BUCKET0:])}
        return out
