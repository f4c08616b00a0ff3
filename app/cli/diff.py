"""`berth diff MODEL V1 V2 --server S`: what changed between two releases on a server, the same
comparison the deploy confirmation shows, plus requirements and files."""
from __future__ import annotations

from . import options
from .base import Command, workspace
from .output import print_json
from .selectors import resolve_one


class DiffCommand(Command):
    name = "diff"
    help = "what changed between two releases: metrics, params, data set, code, requirements, files"

    def add_arguments(self, parser) -> None:
        parser.add_argument("model")
        parser.add_argument("old", metavar="V1", help="the version to compare from")
        parser.add_argument("new", metavar="V2", help="the version to compare to")
        options.add_server(parser, required=True)
        options.add_json(parser)

    def run(self, args) -> int:
        from app.deploy.release_diff import diff_lines, diff_on_server, to_json

        ws = workspace()
        with ws.connect(resolve_one(ws, args.server)) as t:
            d = diff_on_server(t, args.model, args.old, args.new)
        if args.json:
            print_json(dict(to_json(d), server=t.name))
        else:
            print("\n".join(diff_lines(d)))
        return 0
