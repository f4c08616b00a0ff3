"""`berth bundle ...`: start, check and pack a bundle; nothing here needs a server."""
from __future__ import annotations

import sys
from pathlib import Path

from . import options
from .base import ActionGroup, workspace
from .output import print_json, print_table


class BundleGroup(ActionGroup):
    name = "bundle"
    help = "create, check and pack bundles"

    def add_actions(self, actions) -> None:
        a = actions.add_parser("init", help="a working bundle to start from")
        a.add_argument("dir", type=Path)
        a.add_argument("--name", required=True)
        a.add_argument("--template", choices=("python", "sklearn", "pytorch"), default="python",
                       help="python: standard library only; sklearn, pytorch: a train.py writes the model")
        a = actions.add_parser("check", help="validate a bundle folder or archive")
        a.add_argument("path", type=Path)
        options.add_json(a)
        a = actions.add_parser("pack", help="reproducible .tar.gz of a bundle folder")
        a.add_argument("dir", type=Path)
        a.add_argument("-o", "--output", type=Path, required=True)
        a = actions.add_parser("profile", help="how much memory and CPU the bundle needs, measured here")
        a.add_argument("path", type=Path)
        a.add_argument("--seconds", type=float, default=5.0, help="seconds of load at each level (default 5)")
        a.add_argument("--connections", type=int, default=8, help="connections of the second level (default 8)")
        options.add_json(a)
        a = actions.add_parser("where", help="the servers a bundle (by sha256) has run on, from the audit log")
        a.add_argument("sha", metavar="SHA256", help="the bundle's sha256, or its first 8+ hex digits")
        options.add_json(a)

    def do_init(self, args) -> int:
        from app.bundle import init_bundle

        for path in init_bundle(args.dir, args.name, args.template):
            print(path)
        first = f"train it with `python {args.dir / 'train.py'}`, then " if args.template != "python" else ""
        print(f"created bundle {args.name} in {args.dir}; {first}check it with `berth bundle check {args.dir}`",
              file=sys.stderr)
        return 0

    def do_profile(self, args) -> int:
        from .bundle_profile import profile

        return profile(args)

    def do_pack(self, args) -> int:
        from app.bundle import pack

        sha = pack(args.dir, args.output)
        print(f"{args.output}  sha256 {sha}")
        return 0

    def do_where(self, args) -> int:
        from app.store.bundle_runs import bundle_runs

        ws = workspace()
        rows = bundle_runs(ws.db, ws.servers, args.sha)
        if args.json:
            print_json(rows)
        elif not rows:
            print(f"berth: no server has run a bundle {args.sha} (by this computer's audit log)", file=sys.stderr)
        else:
            print_table([dict(r, sha256=r["sha256"][:12], environment=r["environment"] or "(removed)") for r in rows],
                        ["server", "environment", "model", "version", "sha256", "first", "last"])
        return 0

    def do_check(self, args) -> int:
        from app.bundle import check_path

        result = check_path(args.path)
        if args.json:
            print_json({"ok": result.ok, "problems": [dict(p.__dict__, text=str(p)) for p in result.problems],
                        "manifest": result.manifest.to_dict() if result.manifest else None})
        else:
            for problem in result.problems:
                print(f"error: {problem}" if problem.severity == "error" else str(problem), file=sys.stderr)
            if result.ok:
                print(f"ok: {result.manifest.name} {result.manifest.version}")
        if not result.ok:
            print(f"berth: {len(result.errors)} problem(s) in {args.path}", file=sys.stderr)
        m = result.manifest
        workspace().audit.record(
            "bundle.check", "ok" if result.ok else "failed", model=m.name if m else "",
            version=m.version if m else "",
            detail=f"{args.path}: " + ("no problems" if result.ok else "; ".join(map(str, result.errors))))
        return 0 if result.ok else 1
