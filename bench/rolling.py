"""A group deploy of the iris example to N local servers (own roots, real runners), one by one
(--parallel 1) against --parallel N: the wall time of `berth deploy` as a user runs it.

    .venv/bin/python bench/rolling.py            # N=10, parallel 1 and 10, 2 repeats
    .venv/bin/python bench/rolling.py -n 20 --parallel 1 5 20 --repeat 3

Everything lives in a fresh temp folder (BERTH_HOME there, one root per server), removed at the
end; every runner started is stopped. bench/fleet.py measures the same over real sshd servers."""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def one_run(base: Path, n: int, parallel: int) -> float:
    home = base / f"home-p{parallel}-{time.monotonic_ns()}"
    env = dict(os.environ, BERTH_HOME=str(home), PYTHONPATH=str(REPO),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    os.environ.update(BERTH_HOME=str(home), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    from app.store.servers import ServerConfig
    from app.workspace import Workspace

    ws = Workspace()
    roots = [home / "roots" / f"n{i}" for i in range(1, n + 1)]
    for i, root in enumerate(roots, 1):
        ws.servers.save(ServerConfig(name=f"n{i}", kind="local", root=str(root)))
    ws.db.close()
    argv = [sys.executable, "-m", "app", "deploy", str(REPO / "resources/examples/iris"), "--server", "n*",
            "--parallel", str(parallel)]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    from tests.agent_kit import stop_all

    for root in roots:
        if root.is_dir():
            stop_all(root)
    if done.returncode != 0:
        sys.exit(f"deploy --parallel {parallel} failed ({done.returncode}):\n{done.stdout}{done.stderr[-3000:]}")
    return seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=10, help="local servers (default 10)")
    p.add_argument("--parallel", type=int, nargs="+", default=[1, 10])
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="berth-rolling-") as tmp:
        print(f"group deploy of iris to {args.n} local servers, {args.repeat} run(s) each")
        print(f"{'parallel':>8}  {'median s':>8}  {'min s':>6}  {'max s':>6}")
        for parallel in args.parallel:
            times = [one_run(Path(tmp), args.n, parallel) for _ in range(args.repeat)]
            print(f"{parallel:>8}  {statistics.median(times):>8.2f}  {min(times):>6.2f}  {max(times):>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
