#!/usr/bin/env python3
"""The fleet CLI's read-only commands, this checkout against another one, on the same N loopback
sshd's in the same minutes: rounds alternate the two, so a machine shared with other work loads both
alike (bench/fleet.py's runs, minutes apart, are not comparable under a changing load).

    .venv/bin/python bench/fleet_cli_ab.py N --baseline DIR [--rounds 3]

DIR: another Berth checkout (e.g. `git archive REF | tar -x -C DIR`) with the same agent (the same
app/agent files: one install serves both). Prints, per command and checkout, the median wall time
and the median CPU of the `berth` process (user + system, its own children included: `local`'s
agent). bench/README.md, "Fleet".
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "tests")]
from sshd import SshServer, missing_tools  # noqa: E402

COMMANDS = (("status", "--json"), ("monitor", "--once", "--json"))


def berth(tree: Path, env: dict, *argv: str) -> tuple[float, float]:
    """(wall s, CPU s) of one `berth ARGV` run from `tree`; fails loudly on a non-zero exit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "app", *argv], cwd=tree, env=dict(env, PYTHONPATH=str(tree)),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"`berth {' '.join(argv)}` from {tree} exited {r.returncode}: {r.stderr[-1500:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", type=int)
    p.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    if missing_tools():
        print("needs openssh-server", file=sys.stderr)
        return 2
    trees = {"baseline": args.baseline.resolve(), "this": ROOT}
    folder = Path(tempfile.mkdtemp(prefix="berth-fleet-ab-"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
    env.update(BERTH_HOME=str(folder / "home"), BERTH_SSH_DIR=str(folder / "ssh"),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    (folder / "home").mkdir()
    (folder / "ssh").mkdir()
    servers: list[SshServer] = []
    try:
        with ThreadPoolExecutor(4) as pool:
            servers = list(pool.map(lambda i: SshServer(folder=folder / f"s{i}", max_startups="200:30:400",
                                                        max_sessions=200), range(args.n)))
        for srv in servers:
            srv.start()
        for i, srv in enumerate(servers, 1):
            berth(ROOT, env, "server", "add", f"fleet-{i}", "--host", srv.host, "--port", str(srv.port), "--user",
                  srv.user, "--key", str(srv.key_path), "--root", str(folder / f"s{i - 1}" / "root"),
                  "--accept-host-key", srv.fingerprint)
        print(f"N={args.n}: {args.rounds} rounds, each command from each checkout in turn; load at start "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        figures = {(c, t): [] for c in COMMANDS for t in trees}
        for r in range(args.rounds):
            for command in COMMANDS:
                for name, tree in (trees.items() if r % 2 == 0 else reversed(trees.items())):
                    figures[command, name].append(berth(tree, env, *command))
        for command in COMMANDS:
            line = []
            for name in trees:
                runs = figures[command, name]
                line.append(f"{name} {statistics.median(w for w, _ in runs):.2f} s wall, "
                            f"{statistics.median(c for _, c in runs):.2f} s CPU")
            print(f"  berth {' '.join(command):22} " + " | ".join(line))
        print(f"load at the end {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    finally:
        for srv in servers:
            srv.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
