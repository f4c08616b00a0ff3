"""`berth server aliases`: the Host aliases of ~/.ssh/config, as OpenSSH's rules resolve them."""
from . import options
from .base import Failed
from .output import print_json, print_table


def add_arguments(actions) -> None:
    a = actions.add_parser("aliases", help="the Host aliases of ~/.ssh/config")
    options.add_json(a)


def run(args, ws) -> int:
    from app.remote.sshconfig import SSHConfigError, list_aliases, resolve

    rows = []
    try:
        names = list_aliases()
    except SSHConfigError as e:
        raise Failed(str(e)) from None
    for name in names:
        try:  # one alias Berth cannot use (ProxyCommand, Match exec) is listed as such, not fatal
            ep = resolve(name)
        except SSHConfigError as e:
            rows.append({"alias": name, "host": "", "port": None, "user": "", "proxy_jump": "",
                         "identity_files": [], "identities_only": False, "problem": str(e)})
            continue
        rows.append({"alias": name, "host": ep.host, "port": ep.port, "user": ep.user,
                     "proxy_jump": ",".join(j.describe() for j in ep.jumps),
                     "identity_files": list(ep.identity_files), "identities_only": ep.identities_only,
                     "problem": ""})
    print_json(rows) if args.json else print_table(rows, ["alias", "host", "port", "user", "proxy_jump", "problem"])
    return 0
