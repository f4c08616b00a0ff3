"""Offline deploys (issue 20): time and bytes of a first and a second offline deploy of
resources/examples/churn-sklearn (or, with --example digits-torch, the PyTorch example, whose second
version is retrained with new weights by its train.py) to a loopback sshd whose sessions cannot reach any index (sshd
SetEnv: a dead PIP_INDEX_URL, no pip config), beside the same done by hand in the same run:
`pip download` (for the server's platform) + `scp` + `pip install --no-index --find-links`.

    .venv/bin/python bench/offline.py [--example churn-sklearn|digits-torch] [--keep]

The desktop resolves from its own pip configuration (PyPI here); its pip HTTP cache is whatever
it is (say so when comparing runs). Everything else lives in one temp folder, removed at the end."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT / "tests"), str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from _kit import table  # noqa: E402

EXAMPLES = ROOT / "resources" / "examples"
OFFLINE_ENV = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple/", "PIP_CONFIG_FILE": "/dev/null", "SHLVL": "1"}


def deploy(ws, bundle: Path) -> dict:
    """One deploy through Workspace.deploy; seconds per step, and bytes uploaded."""
    steps: dict[str, float] = {}
    sent = 0
    started = last = time.monotonic()
    step = "check"
    with ws.connect("box") as t:
        for p in ws.deploy(t, bundle).run():
            now = time.monotonic()
            if p.step != step:
                steps[step] = steps.get(step, 0.0) + now - last
                step, last = p.step, now
            if p.step == "upload" and p.done is not None:
                sent = max(sent, p.done)
    now = time.monotonic()
    steps[step] = steps.get(step, 0.0) + now - last
    return {"total": now - started, "steps": steps, "bytes": sent}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the temp folder and print it")
    ap.add_argument("--example", default="churn-sklearn", choices=("churn-sklearn", "digits-torch"))
    args = ap.parse_args(argv)
    bundle = EXAMPLES / args.example
    tmp = Path(tempfile.mkdtemp(prefix="berth-bench-offline-"))
    os.environ["BERTH_HOME"] = str(tmp / "home")
    from sshd import SshServer

    srv = SshServer(folder=tmp / "sshd", set_env=OFFLINE_ENV).start()
    ws = None
    try:
        from app.deploy.changes import change, run_to_end
        from app.store.server_index import ServerIndexes
        from app.store.servers import ServerConfig
        from app.workspace import Workspace

        ws = Workspace()
        ws.add_server(ServerConfig(name="box", host=srv.host, port=srv.port, user=srv.user, key_path=str(srv.key_path),
                                   root=str(tmp / "root")), srv.fingerprint)
        ServerIndexes(ws.db).set_mode("box", "offline")
        first = deploy(ws, bundle)
        second = deploy(ws, second_version(bundle, tmp))
        facts = ServerIndexes(ws.db).get("box").facts
        known = tmp / "known_hosts"
        known.write_text(f"[{srv.host}]:{srv.port} {srv.host_public_key}\n")
        ssh_base = ["ssh", "-i", str(srv.key_path), "-o", f"UserKnownHostsFile={known}", "-o",
                    "StrictHostKeyChecking=yes", "-p", str(srv.port), f"{srv.user}@{srv.host}"]
        hand = _hand(srv, facts, tmp, ssh_base, known, bundle)
        with ws.connect("box") as t:
            run_to_end(change(t, ws.audit, "stop", args.example))
    finally:
        if ws is not None:
            ws.close()
        srv.stop()
    rows = []
    for label, r in (("Berth, first offline deploy", first), ("Berth, second (new weights)", second),
                     ("by hand: pip download + scp + pip install --no-index", hand)):
        rows.append((label, f"{r['total']:.1f} s", f"{r['bytes'] / 1e6:.1f} MB",
                     ", ".join(f"{k} {v:.1f}s" for k, v in r["steps"].items() if v >= 0.05)))
    print(table(rows, (f"{args.example} to an offline sshd", "time", "sent", "where the time went")))
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def second_version(bundle: Path, tmp: Path) -> Path:
    """1.0.1 with the same requirements: churn-sklearn with a changed file, digits-torch retrained
    (new weights, seed 2) by its own train.py."""
    copy = Path(shutil.copytree(bundle, tmp / f"{bundle.name}-1.0.1"))
    if bundle.name == "digits-torch":
        subprocess.run([sys.executable, str(copy / "train.py"), "--seed", "2", "--version", "1.0.1", "--out", str(copy)],
                       check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        return copy
    toml = copy / "berth.toml"
    toml.write_text(toml.read_text().replace('version = "1.0.0"', 'version = "1.0.1"', 1))
    (copy / "notes.txt").write_text("new weights would go here\n")  # a changed bundle, same requirements
    return copy


def _hand(srv, facts, tmp, ssh_base, known, bundle):
    from app.deploy.wheels import download_command

    wheels = tmp / "hand-wheels"
    timings = {}
    (tmp / "no-cache").mkdir()
    t0 = time.monotonic()
    subprocess.run(download_command(facts, "requirements.txt", str(wheels), tmp / "no-cache"), cwd=bundle, check=True,
                   stdout=subprocess.DEVNULL)
    timings["pip download"] = time.monotonic() - t0
    size = sum(p.stat().st_size for p in wheels.iterdir())
    remote = tmp / "hand-remote"
    remote.mkdir()
    t0 = time.monotonic()
    subprocess.run(["scp", "-q", "-i", str(srv.key_path), "-o", f"UserKnownHostsFile={known}", "-o",
                    "StrictHostKeyChecking=yes", "-P", str(srv.port), "-r", str(wheels), str(bundle / "requirements.txt"),
                    f"{srv.user}@{srv.host}:{remote}/"], check=True)
    timings["scp"] = time.monotonic() - t0
    t0 = time.monotonic()
    script = (f"cd {remote} && python3 -m venv v && v/bin/pip install -q --disable-pip-version-check --no-index "
              f"--find-links hand-wheels -r requirements.txt")
    subprocess.run([*ssh_base, script], check=True)
    timings["venv + pip install"] = time.monotonic() - t0
    return {"total": sum(timings.values()), "steps": timings, "bytes": size}


if __name__ == "__main__":
    sys.exit(main())
