"""`berth experiment ...`: experiments between two versions of a model on one server. This module
holds `replay` (B on the last N logged inputs of the current version, on the server); the router's
start/status/stop join it as actions of the same group."""
from __future__ import annotations

import sys

from . import options
from .base import ActionGroup, Failed, workspace
from .output import print_json, print_table


class ExperimentGroup(ActionGroup):
    name = "experiment"
    help = "compare two versions of a model on one server (replay)"

    def add_actions(self, actions) -> None:
        a = actions.add_parser("replay", help="run VERSION on the last N logged inputs of the current version, on "
                                              "the server, and compare (agreement, latency, accuracy, verdict)")
        a.add_argument("model", metavar="MODEL")
        options.add_server(a, required=True)
        a.add_argument("--b", required=True, metavar="VERSION", help="a release on that server")
        a.add_argument("--last", type=int, default=200, metavar="N", help="inputs replayed (default 200, at most 10000)")
        options.add_json(a)

    def do_replay(self, args) -> int:
        if not 1 <= args.last <= 10000:
            raise Failed("--last must be 1 to 10000")
        ws = workspace()
        server = ws.servers.get(args.server)

        def progress(event):
            if event.get("event") == "step" and event.get("step") == "replay":
                print(f"replayed {event['done']} of {event['total']}", file=sys.stderr, flush=True)

        with ws.connect(server.name) as t:
            result = t.agent("replay", {"model": args.model, "b": args.b, "last": args.last}, on_event=progress)
        if args.json:
            print_json(result)
            return 0
        show(result)
        return 0


def show(result: dict) -> None:
    """The comparison table, the agreement line and the verdict."""
    rows = []
    for side in ("a", "b"):
        f = result[side]
        rows.append({"": side.upper(), "version": f["version"], "requests": f["requests"], "errors": f["errors"],
                     "rejected": f["rejected"], "p50_ms": f["p50_ms"], "p95_ms": f["p95_ms"], "p99_ms": f["p99_ms"],
                     "labelled": f.get("labelled", 0),
                     "accuracy": "" if "accuracy" not in f else f"{f['accuracy']:.4f}",
                     "mae": "" if "mae" not in f else f"{f['mae']:.6g}"})
    print_table(rows, ["", "version", "requests", "errors", "rejected", "p50_ms", "p95_ms", "p99_ms", "labelled",
                       "accuracy", "mae"])
    ag = result["agreement"]
    if ag["compared"]:
        line = f"agreement: {ag['equal']} of {ag['compared']} equal ({ag['agreement']:.1%})"
        if "mean_abs_diff" in ag:
            line += f", mean abs diff {ag['mean_abs_diff']:.6g}, max {ag['max_abs_diff']:.6g}"
        print(line)
    v = result["verdict"]
    print(f"verdict: {v['text']}")
    for name, m in v["metrics"].items():
        ci = m.get("ci")
        print(f"  {name}: A {m['a']:.6g}, B {m['b']:.6g}, B-A {m['diff']:+.6g}"
              + (f", {v['confidence']:.0%} interval [{ci[0]:+.6g}, {ci[1]:+.6g}]" if ci else ", too few for an interval"))
