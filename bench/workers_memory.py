"""Memory of `[serve] workers = N` for the scikit-learn example: the sum of RSS over the runner's
process tree against the sum of PSS (/proc/PID/smaps_rollup), which splits each shared page among
the processes mapping it, so the copy-on-write sharing of load-then-fork shows as PSS << RSS.

    .venv/bin/python bench/workers_memory.py [--workers 1,2,4] [--requests 2000]

Deploys resources/examples/churn-sklearn with the agent in-process (agent_kit, as the tests do:
scikit-learn is installed from PyPI into its venv the first time), once per N, sends `--requests`
predictions over new connections (so every worker serves), then reads each process's figures."""
import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from agent_kit import call, deploy, http_json, stop_all  # noqa: E402
from app.agent.workerfigures import children  # noqa: E402

EXAMPLE = HERE.parent / "resources" / "examples" / "churn-sklearn"


def kb(pid, field, path):
    with open("/proc/%d/%s" % (pid, path)) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def figures(pid):
    return kb(pid, "Rss", "smaps_rollup"), kb(pid, "Pss", "smaps_rollup")


def private(pid):
    """USS: the pages only this process maps (what it costs on its own)."""
    return kb(pid, "Private_Clean", "smaps_rollup") + kb(pid, "Private_Dirty", "smaps_rollup")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--requests", type=int, default=2000)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="berth-workers-mem-"))
    root = tmp / "srv"
    body = __import__("json").loads((EXAMPLE / "example.json").read_text())
    print("%-8s %-7s %10s %10s %11s %s" % ("workers", "when", "rss_sum", "pss_sum", "parent_uss", "worker_pss (MB)"))
    try:
        for i, n in enumerate(int(x) for x in a.workers.split(",")):
            folder = tmp / ("b%d" % n)
            shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__"))
            toml = (folder / "berth.toml").read_text().replace('version = "1.0.0"', 'version = "1.0.%d"' % i, 1)
            (folder / "berth.toml").write_text(toml + "workers = %d\n" % n)
            t0 = time.monotonic()
            _, error, _ = deploy(root, folder)
            assert error is None, error
            st = call(root, "status")[0]["models"][0]
            parent, port = st["pid"], st["port"]
            for when in ("started", "served"):
                if when == "served":
                    for _ in range(a.requests):
                        assert http_json(port, "POST", "/predict", body)[0] == 200
                tree = [parent] + children(parent)
                rows = [figures(pid) for pid in tree]
                workers = rows[1:] or rows
                print("%-8d %-7s %10.1f %10.1f %11.1f %s" % (
                    n, when, sum(r for r, _ in rows) / 1024, sum(q for _, q in rows) / 1024, private(parent) / 1024,
                    "/".join("%.1f" % (q / 1024) for _, q in workers)), flush=True)
            print("  (deploy %.1f s)" % (time.monotonic() - t0), flush=True)
    finally:
        stop_all(root)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
