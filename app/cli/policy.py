"""`berth whoami --server S` and `berth policy show|grant|revoke --server S`: roles as the server's
agent enforces them for the Unix user this computer logs in as (docs/permissions.md)."""
from __future__ import annotations

from app.agent.policy import check_principal, check_role, check_scope

from . import options
from .base import ActionGroup, Command
from .on_server import checked, on_server
from .output import print_json, print_table


class WhoamiCommand(Command):
    name = "whoami"
    help = "who the server says you are there: your Unix user, groups, and role per model"

    def add_arguments(self, parser) -> None:
        options.add_server(parser, required=True)
        options.add_json(parser)

    def run(self, args) -> int:
        from app.deploy import policy

        name, me = on_server(args.server, lambda t, _ws: policy.whoami(t), held=True)
        if args.json:
            print_json({k: me[k] for k in ("user", "groups", "roles")})
            return 0
        scoped = ", ".join(f"{m}: {r}" for m, r in me["roles"].items() if m != "*")
        print(f"{name}: {me['user']} (groups {', '.join(me['groups'])}): {me['roles']['*'] or 'no role'} on every "
              f"model{'; ' + scoped if scoped else ''}{' (a production server)' if me['production'] else ''}")
        if me["policy"] == "none":
            print(f"{name}: no policy file: the root's owner is admin, everyone else a viewer")
        return 0


class PolicyGroup(ActionGroup):
    name = "policy"
    help = "the server's roles: who may deploy, release, run jobs (enforced by the server itself)"

    def add_actions(self, actions) -> None:
        show = actions.add_parser("show", help="the server's policy: users and @groups with their roles")
        options.add_server(show, required=True)
        options.add_json(show)
        for verb in ("grant", "revoke"):
            a = actions.add_parser(verb, help=f"{verb} a role (admins only; audited as policy.changed)")
            a.add_argument("principal", metavar="USER|@GROUP")
            a.add_argument("role", metavar="ROLE", help="viewer, operator, deployer, releaser or admin")
            options.add_server(a, required=True)
            a.add_argument("--model", help="for this model only (default: every model of the server)")
        prod = actions.add_parser("production", help="whether this server is production: deploy, rollback and "
                                                     "experiments then need the releaser role (admins only)")
        prod.add_argument("value", choices=("true", "false"))
        options.add_server(prod, required=True)
        eyes = actions.add_parser("four-eyes", help="whether changes on this production server wait for a second "
                                                    "releaser's approval (`berth approve`; admins only)")
        eyes.add_argument("value", choices=("true", "false"))
        options.add_server(eyes, required=True)
        eyes.add_argument("--model", help="for this model only (default: every model of the server)")

    def do_show(self, args) -> int:
        from app.deploy import policy

        name, shown = on_server(args.server, lambda t, _ws: policy.show(t))
        if args.json:
            print_json(dict(shown, server=name))
            return 0
        state = {"none": "no policy file: the root's owner is admin, everyone else a viewer",
                 "trusted": "production" if shown["production"] else "not production",
                 "untrusted": f"NOT TRUSTED, only viewer actions are allowed: {shown['untrusted']}"}[shown["state"]]
        print(f"{name}: {shown['path']}: {state}")
        eyes = ", ".join(f"{m}: {'on' if on else 'off'}" for m, on in sorted((shown.get("four_eyes") or {}).items()))
        if eyes:
            print(f"{name}: four eyes (a second releaser approves production changes): {eyes}")
        rows = [{"who": who, "model": model, "role": role}
                for who, grants in sorted(shown["roles"].items()) for model, role in sorted(grants.items())]
        if rows:
            print_table(rows, ["who", "model", "role"])
        return 0

    def do_grant(self, args) -> int:
        return self._change(args, grant=True)

    def do_revoke(self, args) -> int:
        return self._change(args, grant=False)

    def do_production(self, args) -> int:
        from app.deploy import policy

        return _detail(args.server, lambda t, ws: policy.set_production(t, ws.audit, args.value == "true"))

    def do_four_eyes(self, args) -> int:
        from app.deploy import policy

        if args.model:
            checked(lambda: check_scope(args.model))
        return _detail(args.server, lambda t, ws: policy.set_four_eyes(t, ws.audit, args.value == "true",
                                                                     args.model or ""))

    def _change(self, args, grant: bool) -> int:
        checked(lambda: check_principal(args.principal), lambda: check_role(args.role),
                lambda: check_scope(args.model) if args.model else None)
        from app.deploy import policy

        return _detail(args.server, lambda t, ws: policy.change(t, ws.audit, grant, args.principal, args.role,
                                                              args.model or ""))


def _detail(server: str, call) -> int:
    name, result = on_server(server, call)
    print(f"{name}: {result['detail']}")
    return 0
