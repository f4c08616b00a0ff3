"""`berth server set-container S ...`: the server's container engine, base image and limits (the
agent's containerengine.py checks and keeps them in <root>/containers.json); and the line
`berth server check` prints about the engine."""
from __future__ import annotations

from . import options


def add_arguments(actions) -> None:
    a = actions.add_parser("set-container", help="a server's container engine, base image and limits (for "
                                                 "bundles with [serve] runtime = \"container\")")
    a.add_argument("name")
    a.add_argument("--engine", metavar="PATH", help="the docker or podman binary (default: the first on PATH)")
    a.add_argument("--base-image", metavar="IMAGE", help="the image releases build FROM unless the bundle names one")
    a.add_argument("--memory", metavar="SIZE", help="each container's memory limit, e.g. 512m (bundle's wins)")
    a.add_argument("--cpus", type=float, help="each container's CPU limit, e.g. 1.5 (bundle's wins)")
    a.add_argument("--build-network", choices=("default", "none", "host"),
                   help="the network image builds use (none: offline servers, requirements from wheels)")
    options.add_json(a)


def run(args, ws) -> int:
    from app.cli.output import print_json

    wanted = {k: getattr(args, k) for k in ("engine", "base_image", "memory", "cpus", "build_network")
              if getattr(args, k) is not None}
    with ws.connect(args.name) as t:
        result = t.agent("container_set", wanted)
    if args.json:
        print_json(result["settings"])
    else:
        print(f"{args.name}: " + (", ".join(f"{k} {v}" for k, v in sorted(result["settings"].items())) or
                                 "no container settings (defaults)"))
    return 0


def check_line(t) -> tuple[str, dict]:
    """The `berth server check` line about containers, and the agent's answer for --json."""
    found = t.agent("container_check", {})
    if found.get("usable"):
        rootless = " (rootless)" if found.get("rootless") else ""
        line = f"containers: {found['engine']} {found.get('version', '')}{rootless} at {found['path']}"
    else:
        line = f"containers: none usable ({found.get('detail')})"
    return line, found
