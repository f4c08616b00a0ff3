"""The compact table `berth monitor` prints and refreshes (the JSON form is app/monitor/sample_json.py)."""
from app.formatting import human_bytes

from .output import print_table


def _num(v, fmt: str = "{:.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def _window(kind: str | None, interval_s: float | None) -> str:
    """Over what the latency figures were taken: this sample's interval, or the runner's whole life."""
    if kind == "interval":
        return f"last {interval_s:g} s" if interval_s else "this interval"
    return "since start" if kind == "since_start" else ""


def print_monitor(samples: list[dict], model: str | None = None) -> None:
    """One line per server, then a row per model: what `berth monitor` refreshes."""
    import time

    for sample in samples:
        host = sample.get("host") or {}
        mem = host.get("memory") or {}
        disk = host.get("disk") or {}
        load = host.get("load") or []
        when = time.strftime("%H:%M:%S", time.localtime(sample.get("ts") or 0))
        disk_pct = 100.0 * disk["used"] / disk["total"] if disk.get("total") else None
        print(f"{sample.get('server')}  {when}  cpu {_num(host.get('cpu_percent'))}%  "
              f"mem {human_bytes(mem.get('used') or 0)} of {human_bytes(mem.get('total') or 0)}  "
              f"load {' '.join(f'{x:.2f}' for x in load)}  disk {_num(disk_pct)}%")
        rows = []
        for name, m in sorted((sample.get("models") or {}).items()):
            if model is not None and name != model:
                continue
            lat = m.get("latency_ms") or {}
            rows.append({"model": name, "version": m.get("version"), "cpu%": _num(m.get("cpu_percent")),
                         "rss": human_bytes(m["rss_bytes"]) if m.get("rss_bytes") is not None else "-",
                         "req/s": _num(m.get("requests_per_s"), "{:.2f}"), "err/s": _num(m.get("errors_per_s"), "{:.2f}"),
                         "p50 ms": _num(lat.get("p50"), "{:.2f}"), "p95 ms": _num(lat.get("p95"), "{:.2f}"),
                         "p99 ms": _num(lat.get("p99"), "{:.2f}"),
                         "window": _window(lat.get("window"), sample.get("interval_s"))})
        print_table(rows, ["model", "version", "cpu%", "rss", "req/s", "err/s", "p50 ms", "p95 ms", "p99 ms",
                           "window"])
        print()
