"""A bundle's profile kept on this desktop (by bundle sha256: the same content needs the same
resources wherever it goes), said in words, and held against a server: "needs about 310 MB of
memory, 0.8 ms of CPU per request; box has 2.1 GB available and 4 cores"."""
from __future__ import annotations

import json
from pathlib import Path

from app.store.paths import berth_home

MB = 1024 * 1024
HEADROOM = 1.5  # a server should have this many times the peak RSS available, for growth and the OS


def profiles_dir() -> Path:
    return berth_home() / "profiles"


def save(profile: dict) -> Path:
    folder = profiles_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{profile['bundle_sha256']}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(profile, indent=1))
    tmp.replace(path)
    return path


def stored(sha256: str) -> dict | None:
    if not sha256 or not all(c in "0123456789abcdef" for c in sha256):
        return None
    try:
        data = json.loads((profiles_dir() / f"{sha256}.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("bundle_sha256") == sha256 else None


def size(n: int | None) -> str:
    if n is None:
        return "?"
    if n >= 1024 * MB:
        return f"{n / (1024 * MB):.1f} GB"
    if n >= MB:
        return f"{n / MB:.0f} MB" if n >= 100 * MB else f"{n / MB:.1f} MB"
    return f"{n / 1024:.0f} KB"


def report_lines(p: dict) -> list[str]:
    one, many = p["one"], p["many"]
    lines = [
        f"{p['model']} {p['version']}, measured on this computer ({p['measured_on']['cpus']} cores), "
        f"{p['seconds']:g} s per load level",
        f"  load time              {p['load_s']:.2f} s",
        f"  memory                 {size(p['rss_after_load_bytes'])} after load, {size(p['rss_peak_bytes'])} at peak",
        f"  CPU per request        {p['cpu_ms_per_request']:.3g} ms (about {p['requests_per_core_s']:,} requests/s per core)",
    ]
    for f in (one, many):
        label = f"{f['connections']} connection" + ("s" if f["connections"] > 1 else "")
        lines.append(f"  {label:<22} p50 {f['p50_ms']:.3g} ms, p99 {f['p99_ms']:.3g} ms, "
                     f"{f['requests_per_s']:,.0f} requests/s" + (f", {f['failures']} failed" if f["failures"] else ""))
    lines.append(f"  on disk                {size(p['disk_bytes'])} (virtualenv {size(p['venv_bytes'])})")
    return lines


def fit(p: dict, server: str, facts: dict) -> tuple[str, str | None]:
    """(the comparison line, a warning when the server cannot hold it). `facts`: the agent's hello."""
    need = f"needs about {size(p['rss_peak_bytes'])} of memory, {p['cpu_ms_per_request']:.2g} ms of CPU per request"
    available, cpus, free = facts.get("mem_available"), facts.get("cpus"), facts.get("disk_free")
    have = []
    if available is not None:
        have.append(f"{size(available)} available")
    if cpus:
        have.append(f"{cpus} cores")
    line = f"{need}; {server} has " + " and ".join(have) if have else f"{need}; {server} did not say what it has"
    warnings = []
    if available is not None and p["rss_peak_bytes"] * HEADROOM > available:
        warnings.append(f"{server} has {size(available)} of memory available and the model needs about "
                        f"{size(p['rss_peak_bytes'])} (with headroom {size(int(p['rss_peak_bytes'] * HEADROOM))})")
    if free is not None and p["disk_bytes"] > free:
        warnings.append(f"{server} has {size(free)} of disk free and the release with its virtualenv takes "
                        f"{size(p['disk_bytes'])}")
    return line, "; ".join(warnings) or None


def capacity(transport, bundle_path) -> tuple[str, str | None] | None:
    """`fit` for the console's confirmation: the profile kept for this bundle's content against the
    server's memory and cores; None when the bundle was never profiled."""
    from app.bundle import open_bundle

    with open_bundle(bundle_path) as bundle:
        profile = stored(bundle.sha256)
    if profile is None:
        return None
    return fit(profile, transport.name, transport.agent("hello", {}))
