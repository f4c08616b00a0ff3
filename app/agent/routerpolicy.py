"""Which version answers a request, and the canary's steps. A/B: B's fixed share; with a sticky
header, the value's sha256 decides (the same key lands on the same version across router restarts,
and a key on B stays on B as a canary's share grows). Canary: each step is held for at least
`step_requests` of B's requests and `step_minutes`, and advances only while B's error rate and p95
over the step stay within the limits; a breach sets B to 0 % and ends the experiment."""
import hashlib
import random
import time

from .histogram import percentile
from .routerstats import BOUNDS

MIN_SAMPLE = 20  # B's requests in a step before its error rate or p95 may end a canary


def share_of(key):
    """A header value's place in [0, 1): the first 8 bytes of its sha256."""
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2.0 ** 64


class Policy:
    def __init__(self, config):
        self.config = config
        self.weight = float(config.get("weight", 0.0))
        sticky = config.get("sticky_header")
        self.sticky = sticky.lower().encode("latin-1") if sticky else None

    def pick(self, headers):
        """'a' or 'b' for one /predict request (headers: {lower-case name: bytes value})."""
        weight = self.weight
        if weight <= 0.0 or self.config["mode"] == "shadow":
            return "a"
        if weight >= 1.0:
            return "b"
        key = headers.get(self.sticky) if self.sticky else None
        x = share_of(key) if key else random.random()
        return "b" if x < weight else "a"


def canary_step(config, base, now_b, now=None):
    """What the canary does now: ("breach", why), ("advance", None), ("complete", None) or (None, None).
    `base`: B's figures when the step began; `now_b`: B's figures now (routerstats snapshots)."""
    now = time.time() if now is None else now
    requests = now_b["requests"] - base["requests"]
    errors = now_b["errors"] - base["errors"]
    if requests >= min(MIN_SAMPLE, config["step_requests"]) and requests > 0:
        rate = errors / float(requests)
        if rate > config["max_error_rate"]:
            return "breach", "B's error rate %.1f%% over %d requests is above the limit %.1f%%" % (
                rate * 100, requests, config["max_error_rate"] * 100)
        limit = config.get("max_p95_ms")
        if limit:
            counts = [c - b for b, c in zip(base["counts"], now_b["counts"])]
            p95 = percentile(BOUNDS, counts, 0.95) * 1000
            if p95 > limit:
                return "breach", "B's p95 %.1f ms over %d requests is above the limit %g ms" % (p95, requests, limit)
    held = now - config["step_started"] >= config["step_minutes"] * 60
    if requests >= config["step_requests"] and held:
        return ("complete" if config["step"] >= len(config["steps"]) - 1 else "advance"), None
    return None, None
