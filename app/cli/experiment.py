"""`berth experiment start|status|stop|replay`: A/B, canary and shadow experiments between two
releases of a model on one server, and replay of logged inputs on B (docs/experiments.md). Settings
are checked by the agent, which refuses a bad one with one line before anything changes."""
from __future__ import annotations

import argparse
import sys

from . import options
from .base import ActionGroup, Failed, workspace
from .output import print_json, print_table
from .selectors import resolve_one

CANARY_ONLY = ("step_requests", "step_minutes", "max_error_rate", "max_p95_ms")


def steps(text: str) -> list[float]:
    """argparse type of --canary: percentages separated by commas (5,25,50,100)."""
    try:
        return [float(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give percentages separated by commas, e.g. 5,25,50,100") from None


class ExperimentGroup(ActionGroup):
    name = "experiment"
    help = "A/B, canary and shadow experiments between two releases on one server"

    def add_actions(self, actions) -> None:
        a = actions.add_parser("start", help="route the model's stable port between A (current) and B (audited)")
        a.add_argument("model")
        options.add_server(a, required=True)
        a.add_argument("--b", required=True, metavar="VERSION", help="the release to try (on that server)")
        a.add_argument("--a", metavar="VERSION", help="the release to compare with (default: the current one)")
        mode = a.add_mutually_exclusive_group(required=True)
        mode.add_argument("--weight", type=float, metavar="FRACTION", help="A/B: B's share of requests, 0 to 1")
        mode.add_argument("--canary", type=steps, metavar="5,25,50,100", help="canary: B's share in steps (%%)")
        mode.add_argument("--shadow", action="store_true", help="shadow: A answers, B gets a copy")
        a.add_argument("--sticky-header", metavar="NAME", help="A/B: one value of this header, one version")
        a.add_argument("--step-requests", type=int, metavar="N", help="canary: B's requests per step (default 100)")
        a.add_argument("--step-minutes", type=float, metavar="M", help="canary: minutes per step (default 1)")
        a.add_argument("--max-error-rate", type=float, metavar="R", help="canary: B's error rate limit (default 0.05)")
        a.add_argument("--max-p95-ms", type=float, metavar="MS", help="canary: B's p95 limit (default, or 0: none)")
        a = actions.add_parser("status", help="the experiment's figures per version")
        a.add_argument("model")
        options.add_server(a, required=True)
        options.add_json(a)
        a = actions.add_parser("stop", help="end the experiment: A keeps the port, or B with --promote (audited)")
        a.add_argument("model")
        options.add_server(a, required=True)
        a.add_argument("--promote", action="store_true", help="B becomes current")
        a = actions.add_parser("replay", help="run VERSION on the last N logged inputs of the current version, on "
                                              "the server, and compare (agreement, latency, accuracy, verdict)")
        a.add_argument("model", metavar="MODEL")
        options.add_server(a, required=True)
        a.add_argument("--b", required=True, metavar="VERSION", help="a release on that server")
        a.add_argument("--last", type=int, default=200, metavar="N", help="inputs replayed (default 200, at most 10000)")
        options.add_json(a)

    def run(self, args) -> int:
        ws = workspace()
        args.server = resolve_one(ws, args.server)
        return self.dispatch(args, ws)

    def do_start(self, args, ws) -> int:
        from app.deploy import experiments

        settings = start_settings(args)
        with ws.connect(args.server) as t:
            result = experiments.start(t, ws.audit, args.model, settings)
        print(f"{args.model} on {args.server}: {result['detail']} (router pid {result['router_pid']}, port "
              f"{result['port']})")
        return 0

    def do_status(self, args, ws) -> int:
        from app.deploy import experiments

        with ws.connect(args.server) as t:
            result = experiments.status(t, args.model)
        shown = dict(result, server=args.server, a=_figures(result["a"]), b=_figures(result["b"]))
        if args.json:
            print_json(shown)
            return 0
        when = (f"since {result['started']}" if result["state"] in ("running", "complete")
                else f"at {result.get('ended')} (started {result['started']})")
        print(f"{args.model} on {args.server}: {result['mode']} {result['state']} {when}: {result['detail']}")
        print_table([dict(_labels(shown["a"]), side="A"), dict(_labels(shown["b"]), side="B")],
                    ["side", *experiments.FIGURES, "labelled", "accuracy", "mae"])
        c = result.get("canary")
        if c and result["state"] in ("running", "complete"):
            print(f"canary: step {c['step'] + 1} of {len(c['steps'])} ({c['steps'][c['step']]:g} %), each held for "
                  f"{c['step_requests']} of B's requests and {c['step_minutes']:g} min")
        g = result.get("agreement")
        if g:
            diff = (f", mean abs diff {g['mean_abs_diff']:.6g}, max {g['max_abs_diff']:.6g}"
                    if g.get("mean_abs_diff") is not None else "")
            print(f"agreement: {g['equal_count']} of {g['compared']} equal{diff}; B failed {g['b_failed']}, "
                  f"copies dropped {g['dropped']}")
        _print_verdict(result["verdict"])
        return 0

    def do_stop(self, args, ws) -> int:
        from app.deploy import experiments

        with ws.connect(args.server) as t:
            result = experiments.stop(t, ws.audit, args.model, args.promote)
        print(f"{args.model} on {args.server}: {result['detail']}")
        return 0

    def do_replay(self, args, ws) -> int:
        if not 1 <= args.last <= 10000:
            raise Failed("--last must be 1 to 10000")

        def progress(event):
            if event.get("event") == "step" and event.get("step") == "replay":
                print(f"replayed {event['done']} of {event['total']}", file=sys.stderr, flush=True)

        with ws.connect(args.server) as t:
            result = t.agent("replay", {"model": args.model, "b": args.b, "last": args.last}, on_event=progress)
        if args.json:
            print_json(result)
            return 0
        show(result)
        return 0


def start_settings(args) -> dict:
    """The agent's experiment_start request from the options; misplaced options are wrong usage."""
    if args.sticky_header is not None and args.weight is None:
        raise Failed("--sticky-header goes with --weight")
    given = {k: getattr(args, k) for k in CANARY_ONLY if getattr(args, k) is not None}
    if given and args.canary is None:
        raise Failed(f"--{next(iter(given)).replace('_', '-')} goes with --canary")
    out = {"b": args.b, "a": args.a}
    if args.weight is not None:
        return dict(out, mode="ab", weight=args.weight, sticky_header=args.sticky_header)
    if args.canary is not None:
        return dict(out, mode="canary", steps=args.canary, **given)
    return dict(out, mode="shadow")


def _figures(side: dict) -> dict:
    return {k: v for k, v in side.items() if not k.startswith("latency_")}


def show(result: dict) -> None:
    """The comparison table, the agreement line and the verdict."""
    rows = [dict(_labels(result[side]), **{"": side.upper()}) for side in ("a", "b")]
    print_table(rows, ["", "version", "requests", "errors", "rejected", "p50_ms", "p95_ms", "p99_ms", "labelled",
                       "accuracy", "mae"])
    ag = result["agreement"]
    if ag["compared"]:
        line = f"agreement: {ag['equal']} of {ag['compared']} equal ({ag['agreement']:.1%})"
        if "mean_abs_diff" in ag:
            line += f", mean abs diff {ag['mean_abs_diff']:.6g}, max {ag['max_abs_diff']:.6g}"
        print(line)
    _print_verdict(result["verdict"])


def _labels(f: dict) -> dict:
    """A side's figures with its labelled count and accuracy / MAE as the tables show them."""
    return dict(f, labelled=f.get("labelled", 0), accuracy="" if f.get("accuracy") is None else f"{f['accuracy']:.4f}",
                mae="" if f.get("mae") is None else f"{f['mae']:.6g}")


def _print_verdict(v: dict) -> None:
    """The verdict's line, then each comparison with its interval (why it says what it says)."""
    print(f"verdict: {v.get('text')}")
    for name, m in (v.get("metrics") or {}).items():
        ci = m.get("ci")
        print(f"  {name}: A {m['a']:.6g}, B {m['b']:.6g}, B-A {m['diff']:+.6g}"
              + (f", {v['confidence']:.0%} interval [{ci[0]:+.6g}, {ci[1]:+.6g}]" if ci else ", too few for an interval"))
