#!/usr/bin/env python3
"""Container bench: deploy and rollback times of the iris example as a container release (Docker,
and Podman when it is installed) next to the same bundle as a virtualenv release, measured in the
same run, and the image's size.

    .venv/bin/python bench/containers.py [--repeat N] [--engines docker,podman] [-v]

The agent runs in-process on a fresh root per runtime (no SSH: the figures are the server's side).
Each engine runs on storage of its own under /tmp (tests/container_kit.py: dockerd on its own
socket without touching the firewall, podman on its own containers.conf and storage), with the
cached debootstrap Python base image. Per repeat: a first deploy (1.0.k: for a container, an image
build), a second deploy (1.0.k+1, another build) and a rollback to 1.0.k (no build: the old image
starts). Medians; every ratio is to the virtualenv figure of this run. Everything started is
stopped at the end. Exit 0 on success, 1 on any failure.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT / "tests"), str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from _kit import fmt_s, iris_copy, ratio, source_state, table  # noqa: E402

STEPS = ("first deploy", "second deploy", "rollback")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=2, help="rounds of deploy, deploy, rollback (default 2)")
    p.add_argument("--engines", default="docker,podman", help="container engines to bench (default docker,podman)")
    p.add_argument("-v", "--verbose", action="store_true", help="print each timing as it is measured")
    args = p.parse_args(argv)
    args.engines = [e for e in args.engines.split(",") if e]
    if args.repeat < 1 or any(e not in ("docker", "podman") for e in args.engines):
        p.error("--repeat must be at least 1 and --engines a list of docker, podman")
    return args


def request(root: Path, folder: Path, runtime: str) -> dict:
    from agent_kit import deploy_request

    req = deploy_request(root, folder)
    req["manifest"]["runtime"] = runtime
    return req


def timed(root: Path, command: str, **payload) -> float:
    from agent_kit import call, http_json

    t0 = time.perf_counter()
    result, error, _ = call(root, command, **payload)
    took = time.perf_counter() - t0
    if error is not None:
        raise RuntimeError(f"{command} failed: {error.get('message')} {error.get('log', '')}")
    status, body = http_json(result["port"], "POST", "/predict", {"features": [5.1, 3.5, 1.4, 0.2]})
    if status != 200:
        raise RuntimeError(f"iris answered {status} after {command}: {body}")
    return took


def rounds(root: Path, runtime: str, repeat: int, verbose: bool) -> dict[str, list[float]]:
    """Deploy, deploy, rollback, `repeat` times, on a fresh root; seconds per step."""
    from agent_kit import stop_all

    work = root.parent
    figures: dict[str, list[float]] = {s: [] for s in STEPS}
    try:
        for k in range(repeat):
            for step, version in ((STEPS[0], f"1.0.{2 * k}"), (STEPS[1], f"1.0.{2 * k + 1}")):
                folder = iris_copy(work / f"iris-{root.name}-{version}", version)
                figures[step].append(timed(root, "deploy", **request(root, folder, runtime)))
                if verbose:
                    print(f"  {runtime}: {step} {version}: {figures[step][-1]:.3f} s", flush=True)
            figures[STEPS[2]].append(timed(root, "rollback", model="iris"))
            if verbose:
                print(f"  {runtime}: rollback: {figures[STEPS[2]][-1]:.3f} s", flush=True)
    finally:
        stop_all(root)
    return figures


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from container_kit import BASE_IMAGE, engine as make_engine, missing

    work = Path(tempfile.mkdtemp(prefix="berth-bench-containers-"))
    os.environ["BERTH_HOME"] = str(work / "home")
    results: dict[str, dict[str, list[float]]] = {}
    sizes: dict[str, int] = {}
    skipped: list[str] = []
    failed = False
    try:
        results["venv"] = rounds(work / "root-venv", "venv", args.repeat, args.verbose)
        for kind in args.engines:
            why = missing(kind)
            if why:
                skipped.append(f"{kind}: {why}")
                continue
            engine = make_engine(kind)
            saved = {k: os.environ.get(k) for k in engine.env}
            try:
                engine.start()
                os.environ.update(engine.env)  # the in-process agent finds the engine as an SSH session would
                from agent_kit import call

                _, error, _ = call(work / f"root-{kind}", "container_set", engine=engine.path, base_image=BASE_IMAGE,
                                   build_network="none")
                if error is not None:
                    raise RuntimeError(error["message"])
                results[kind] = rounds(work / f"root-{kind}", "container", args.repeat, args.verbose)
                out = engine.cli("image", "inspect", "--format", "{{.Size}}", "berth/iris:1.0.0").stdout
                sizes[kind] = int(out.strip())
            except Exception:
                traceback.print_exc()
                skipped.append(f"{kind}: failed (traceback above)")
                failed = True
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
                engine.stop()
    except Exception:
        traceback.print_exc()
        failed = True
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nContainer bench: iris, {args.repeat} round(s), medians in seconds; {source_state()}")
    venv = {s: median(results.get("venv", {}).get(s, [])) for s in STEPS}
    rows = []
    for runtime, figures in results.items():
        for step in STEPS:
            m = median(figures[step])
            rows.append((runtime, step, fmt_s(m), ratio(m, venv[step]) if runtime != "venv" else "1.00x"))
    print(table(rows, ("runtime", "step", "median s", "vs venv")))
    for kind, size in sizes.items():
        print(f"image berth/iris:1.0.0 on {kind}: {size / 1e6:.1f} MB (the base image {BASE_IMAGE} is most of it)")
    for line in skipped:
        print(f"skipped {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
