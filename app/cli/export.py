"""`berth export kubernetes MODEL --server S [--version V] -o DIR`: a container release as plain
Kubernetes YAML (a Deployment and a Service; app/deploy/kubeexport.py), for a team moving the model
onto a cluster. It changes nothing on the server, so it is not audited."""
from __future__ import annotations

from pathlib import Path

from . import options
from .base import ActionGroup, workspace
from .output import print_json
from .selectors import resolve_one


def replicas(text: str) -> int:
    import argparse

    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of replicas from 1 to 1000")
    return n


class ExportGroup(ActionGroup):
    name = "export"
    help = "a release in another system's terms (kubernetes)"

    def add_actions(self, actions) -> None:
        a = actions.add_parser("kubernetes", help="a container release as a Deployment and a Service "
                                                  "(plain YAML for kubectl apply -f DIR)")
        a.add_argument("model")
        options.add_server(a, required=True)
        a.add_argument("--version", help="the release (default: the current one)")
        a.add_argument("-o", "--output", required=True, type=Path, metavar="DIR",
                       help="the folder to write deployment.yaml and service.yaml into (new or empty)")
        a.add_argument("--force", action="store_true", help="write into DIR even when it is not empty")
        a.add_argument("--replicas", type=replicas, default=2, help="the Deployment's replicas (default 2)")
        a.add_argument("--registry", metavar="PREFIX",
                       help="the registry the cluster pulls from, e.g. registry.example.com/team: the manifests "
                            "name PREFIX/berth/<model>:<version> (push the image there first)")
        options.add_json(a)

    def do_kubernetes(self, args) -> int:
        from app.deploy.kubeexport import check_request, export

        check_request(args.model, args.version, args.output, args.force, args.registry)  # before connecting
        ws = workspace()
        with ws.connect(resolve_one(ws, args.server)) as t:
            result = export(t, args.model, args.version, args.output, force=args.force, replicas=args.replicas,
                            registry=args.registry)
        if args.json:
            print_json(result)
            return 0
        print(f"{result['model']} {result['version']} from {result['server']}: wrote "
              f"{', '.join(result['files'])} (image {result['image']})")
        print("next:")
        for step in result["next"]:
            print(f"  {step}")
        return 0
