"""A sample as `berth monitor --json` prints it: the documented keys only (the README's contract),
without the raw latency histogram that a sample carries for the console's charts."""
from __future__ import annotations

MODEL_JSON_KEYS = ("version", "pid", "cpu_percent", "rss_bytes", "threads", "open_files", "uptime_s",
                   "requests_total", "errors_total", "requests_per_s", "errors_per_s", "latency_ms", "workers")


def monitor_json(sample: dict, model: str | None = None) -> dict:
    """The server's figures at the top level, the models' (only `model`, when given) under "models"."""
    host = sample.get("host") or {}
    models = sample.get("models") or {}
    return {
        "server": sample.get("server"), "ts": sample.get("ts"), "interval_s": sample.get("interval_s"),
        "cpu_percent": host.get("cpu_percent"), "cpu_per_core": host.get("cpu_per_core"),
        "memory": {k: (host.get("memory") or {}).get(k) for k in ("used", "available", "total")},
        "load": host.get("load"), "disk": host.get("disk"), "net": host.get("net"),
        "models": {name: {k: m.get(k) for k in MODEL_JSON_KEYS} for name, m in sorted(models.items())
                   if model is None or name == model},
    }
