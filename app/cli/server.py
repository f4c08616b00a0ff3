"""`berth server ...`: add, list and check the servers Berth deploys to, and unstick their lock."""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from pathlib import Path

from app import errors
from app.formatting import human_bytes, natural_key
from app.remote.errors import RemoteError
from app.store.servers import ServerConfig

from . import options, server_aliases, server_container, server_held, server_index, server_ports, server_shared, server_smtp
from .base import ActionGroup, Failed, workspace
from .output import print_json, print_table
from .per_server import for_each_server, thread_workspaces
from .selectors import ENV_PREFIX, named_one, resolve_servers

FILE_PATHS = {"sftp": "SFTP", "exec": "exec channels (the server has no SFTP subsystem)"}

ENVIRONMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")


class ServerGroup(ActionGroup):
    name = "server"
    help = "add, list and check servers"

    def add_actions(self, actions) -> None:
        a = actions.add_parser("add", help="add an SSH server (its host key must be trusted)")
        _add_server_arguments(a)
        a = actions.add_parser("list", help="list servers (naturally sorted: s2 before s10)")
        a.add_argument("--env", metavar="ENVIRONMENT", help="only the servers of this environment")
        options.add_json(a)
        a = actions.add_parser("set-env", help="put a server in an environment (staging, production...); "
                                               "'' takes it out")
        a.add_argument("name")
        a.add_argument("environment", type=environment)
        server_smtp.add_arguments(actions)
        server_aliases.add_arguments(actions)
        a = actions.add_parser("check", help="connect; print Python version, root and free disk")
        a.add_argument("selectors", nargs="+", metavar="SERVER",
                       help="a server's name, a glob of names ('web-*') or env:ENVIRONMENT; several may be given")
        a.add_argument("--accept-host-key", metavar="SHA256:...", help="trust this (unknown) host key (one server)")
        options.add_accept_jump_key(a)
        options.add_parallel(a)
        options.add_json(a)
        server_container.add_arguments(actions)
        server_index.add_arguments(actions)
        actions.add_parser("remove", help="remove a server from this computer's list, and its secrets from the "
                                          "keyring").add_argument("name")
        a = actions.add_parser("password", help="store a server's SSH password in the system keyring (checked by "
                                                "logging in)")
        a.add_argument("name")
        _add_password_stdin(a)
        actions.add_parser("forget-key", help="forget a server's trusted host key").add_argument("name")
        a = actions.add_parser("activity", help="what Berth ran on a server (newest first), and how to run it by hand")
        a.add_argument("name")
        a.add_argument("--limit", type=int, default=30)
        options.add_json(a)
        a = actions.add_parser("set-port", help="give a model another stable port on a server (a running model "
                                                "moves at once; audited)")
        a.add_argument("model")
        a.add_argument("port", type=int)
        options.add_server(a, required=True)
        options.add_reason(a, help="why (kept in the audit log)")
        server_ports.add_arguments(actions)
        server_shared.add_arguments(actions)
        server_held.add_arguments(actions)
        a = actions.add_parser("unlock", help="show who holds a server's lock; end a stuck agent after confirming")
        a.add_argument("name")
        a.add_argument("--yes", action="store_true", help="do not ask (scripts): end the holder shown")
        options.add_reason(a, help="why (kept in the audit log)")

    def run(self, args) -> int:
        # only a terminal can be asked for a key's passphrase; scripts use the keyring or fail clearly
        return self.dispatch(args, workspace(ask_passphrase if sys.stdin.isatty() else None))

    def do_add(self, args, ws) -> int:
        server = _server_from_args(args)
        if ws.servers.exists(server.name):
            raise Failed(f"a server named {server.name!r} exists already")
        password = _password(args, "password" in server.auth.split(","))
        _trust_jumps(ws, server, args.accept_jump_key)
        from app.remote.server_check import SAVE, check_server

        # the password goes to the keyring before the check logs in with it; a failed check takes it back
        info = check_server(ws, SAVE, server, args.accept_host_key, _secrets(server.name, password))
        print(f"added {args.name}: {server.describe()}, Python {info['python']}, root {info['root']}")
        return 0

    def do_list(self, args, ws) -> int:
        servers = sorted(ws.servers.list(), key=lambda s: natural_key(s.name))
        if args.env is not None:
            servers = [s for s in servers if s.environment == args.env]
            if not servers:
                resolve_servers(ws, [ENV_PREFIX + args.env])  # says which environments exist
        # `local` has no host, port or user: a port there would suggest an SSH connection
        rows = [dict(s.__dict__, **({"port": None} if s.kind == "local" else {})) for s in servers]
        print_json(rows) if args.json else print_table(rows, ["name", "kind", "host", "port", "user", "ssh_alias",
                                                              "root", "environment"])
        return 0

    def do_aliases(self, args, ws) -> int:
        return server_aliases.run(args, ws)

    def do_check(self, args, ws) -> int:
        names = resolve_servers(ws, args.selectors)
        if len(names) > 1 and (args.accept_host_key or args.accept_jump_key):
            raise Failed(f"--accept-host-key and --accept-jump-key trust one server's keys, and "
                         f"{' '.join(args.selectors)} picks {len(names)}: give one server's name")
        if len(names) == 1:
            args.name = names[0]  # an error's advice names it
            _trust_jumps(ws, ws.servers.get(names[0]), args.accept_jump_key)

        own = thread_workspaces(ws)

        def check(name: str):
            with own().connect(name, args.accept_host_key) as t:
                info = t.hello()
                files = getattr(t, "file_path_kind", "")
                containers, found = server_container.check_line(t)
                facts = server_index.check_facts(own(), t, name)
            if args.json:
                return {"server": name, **{k: info.get(k) for k in ("python", "platform", "root", "disk_free",
                                                                     "disk_total", "port_range")},
                        "files": files or None, "containers": found, "packages": facts}
            return [f"{name}: Python {info['python']} ({info['platform']})", f"root: {info['root']}",
                    *([f"files: {FILE_PATHS.get(files, files)}"] if files else []),
                    f"free disk: {human_bytes(info['disk_free'])} of {human_bytes(info['disk_total'])}",
                    *([f"stable ports from: {info['port_range']}"] if info.get("port_range") else []), containers,
                    *server_index.facts_lines(facts)]

        outcome = for_each_server(names, check, named=named_one(args.selectors, names), parallel=args.parallel)
        if args.json:
            print_json(outcome.results)
            return outcome.exit_code
        for lines in outcome.results:
            print("\n".join(lines))
        return outcome.exit_code

    def do_set_env(self, args, ws) -> int:
        server = ws.servers.get(args.name)
        if server.kind == "local":
            raise Failed("local is always in the environment 'local'")
        if server.environment == args.environment:
            print(f"{args.name} is already in {_env_name(args.environment)}")
            return 0
        ws.servers.save(replace(server, environment=args.environment))
        ws.audit.record("server.edit", "ok", server=server.name, ssh_user=server.user, old=server.environment,
                        new=args.environment, detail="environment")
        print(f"{args.name}: {_env_name(server.environment)} -> {_env_name(args.environment)}")
        return 0

    def do_set(self, args, ws) -> int:
        return server_index.run_set(args, ws)

    def do_set_smtp(self, args, ws) -> int:
        return server_smtp.run(args, ws)

    def do_remove(self, args, ws) -> int:
        ws.remove_server(args.name)
        server_held.retire_quietly(args.name)
        print(f"removed {args.name}")
        return 0

    def do_password(self, args, ws) -> int:
        from app.remote.server_check import TEST, check_server

        server = ws.servers.get(args.name)
        if server.kind == "local":
            raise Failed("local needs no password")
        check_server(ws, TEST, server, None, _secrets(server.name, _password(args, True)))
        print(f"stored the password of {args.name} in the system keyring; logging in with it works")
        if "password" not in server.auth.split(",") and server.auth != "auto":
            print(f"note: {args.name} logs in with --auth {server.auth}, which does not use it", file=sys.stderr)
        return 0

    def do_forget_key(self, args, ws) -> int:
        print(f"forgot {ws.forget_host_key(args.name)} host key(s) of {args.name}")
        return 0

    def do_activity(self, args, ws) -> int:
        rows = ws.activity.list(ws.servers.get(args.name).name, args.limit)
        if args.json:
            print_json(rows)
            return 0
        print_table([dict(r, seconds=f"{r['seconds']:.2f}") for r in rows],
                    ["ts", "command", "summary", "seconds", "outcome", "message"])
        if rows and rows[0]["by_hand"]:
            print(f"\nby hand, the last one ({rows[0]['command']}):\n{rows[0]['by_hand']}")
        return 0

    def do_set_port(self, args, ws) -> int:
        from app.deploy.changes import run_to_end

        with ws.connect_to_change("port.set", args.server, args.reason) as t:
            result = run_to_end(ws.change(t, "port.set", args.model, reason=args.reason, port=args.port))
        print(f"{args.model} on {args.server}: {result['detail']}")
        return 0

    def do_set_container(self, args, ws) -> int:
        return server_container.run(args, ws)

    def do_set_port_range(self, args, ws) -> int:
        return server_ports.run(args, ws)

    def do_init_shared_root(self, args, ws) -> int:
        return server_shared.run(args, ws)

    do_connections, do_disconnect = staticmethod(server_held.connections), staticmethod(server_held.disconnect)

    def do_unlock(self, args, ws) -> int:
        from app.deploy.changes import break_lock, lock_state

        with ws.connect(args.name) as t:
            lock = lock_state(t)
            holder = lock.get("holder") or {}
            if not lock["held"]:
                left = f"; the last holder (pid {holder['pid']}, {holder.get('what')}) ended without releasing " \
                       "it, and the system released it" if holder.get("pid") else ""
                print(f"{args.name} is not locked{left}")
                return 0
            print(f"{args.name} is locked by {holder.get('who')} running '{holder.get('what')}' since "
                  f"{holder.get('since')} (pid {holder.get('pid')}, {'alive' if lock['holder_alive'] else 'gone'})")
            if not args.yes and not _confirmed(args.name, holder):
                print("left as it is")
                return 1
            result = break_lock(t, ws.audit, holder.get("pid"), args.reason)
        print(result["detail"])
        return 0


def _add_server_arguments(a) -> None:
    a.add_argument("name")
    a.add_argument("--ssh-alias", default="", metavar="ALIAS",
                   help="a Host of ~/.ssh/config: host, user and port come from it (the flags below override), "
                        "its ProxyJump, IdentityFile, IdentitiesOnly and ServerAliveInterval apply")
    a.add_argument("--host", help="required unless --ssh-alias gives it")
    a.add_argument("--port", type=int)
    a.add_argument("--user", default="")
    a.add_argument("--key", default="", help="private key file (default: SSH agent, then ~/.ssh/id_*)")
    a.add_argument("--auth", default="auto",
                   help="auto (agent, key files, password) or an order such as 'key,password' or 'password'")
    a.add_argument("--root", default="~/berth", help="Berth's folder on the server (default ~/berth)")
    a.add_argument("--env", default="", type=environment,
                   help="environment label, e.g. staging or production (`--server env:NAME` picks them)")
    options.add_timeouts(a)
    a.add_argument("--accept-host-key", metavar="SHA256:...", help="trust the host key with this fingerprint")
    options.add_accept_jump_key(a)
    _add_password_stdin(a)


def environment(text: str) -> str:
    """argparse type of an environment label: what `env:NAME` can name (wrong usage otherwise)."""
    if text and not ENVIRONMENT_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r}: use a-z A-Z 0-9 . _ - (up to 40), starting with a letter or "
                                         "digit")
    return text


def _env_name(environment: str) -> str:
    return f"environment {environment!r}" if environment else "no environment"


def _add_password_stdin(a) -> None:
    a.add_argument("--password-stdin", action="store_true",
                   help="read the SSH password from stdin's first line (scripts); on a terminal, --auth password "
                        "asks for it. It is kept in the system keyring only")


def _password(args, needed: bool) -> str:
    """The password for the keyring: stdin's first line, else asked on a terminal when `needed`
    (--auth names password), else "" (none given). Never from a flag: argv is visible in `ps`."""
    if not (args.password_stdin or needed):
        return ""
    from app.remote.credentials import secure_keyring

    if not secure_keyring():  # said before the operator types a password for nothing
        raise Failed("no secure keyring is available on this computer (e.g. GNOME Keyring, KWallet, macOS "
                     "Keychain), so the password cannot be stored and the next run could not log in; nothing "
                     "was saved. Unlock or install one, or log in with a key (--key FILE)")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise Failed("--password-stdin: stdin gave no password")
    elif needed and sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"SSH password for {args.name}: ")
    else:
        raise Failed("--auth password needs the password: give it on stdin with --password-stdin, or run in a "
                     "terminal to be asked")
    return password


def _secrets(name: str, password: str):
    from app.remote.credentials import password_account
    from app.remote.server_check import SecretChanges

    return SecretChanges({password_account(name): password} if password else {})


def _confirmed(name: str, holder: dict) -> bool:
    """Breaking a lock ends a process: the operator types the server's name, never a script."""
    if not sys.stdin.isatty():
        raise Failed("not breaking the lock without a confirmation: run in a terminal, or add --yes")
    answer = input(f"End pid {holder.get('pid')} to break the lock? Type the server's name to confirm: ")
    return answer.strip() == name


def _server_from_args(args) -> ServerConfig:
    """Explicit flags win over the alias's HostName, User and Port."""
    host, port, user = args.host, args.port, args.user
    if args.ssh_alias:
        alias = _alias(args.ssh_alias)
        host, port, user = host or alias.host, port or alias.port, user or alias.user
    if not host:
        raise Failed("give --host HOST, or --ssh-alias ALIAS from ~/.ssh/config")
    methods = [m.strip() for m in args.auth.split(",")]
    if args.auth != "auto" and not all(m in ("agent", "key", "password") for m in methods):
        raise Failed(f"--auth {args.auth!r}: use auto, or some of agent, key, password separated by commas")
    return ServerConfig(name=args.name, host=host, port=port or 22, user=user or _local_user(),
                        key_path=str(Path(args.key).expanduser().resolve()) if args.key else "",
                        root=args.root, environment=args.env, auth=args.auth, ssh_alias=args.ssh_alias,
                        connect_timeout=args.connect_timeout, auth_timeout=args.auth_timeout,
                        command_timeout=args.command_timeout, keepalive=args.keepalive)


def _alias(name: str):
    from app.remote.sshconfig import SSHConfigError, config_path, is_known, resolve

    try:
        if not is_known(name):
            raise Failed(f"no Host {name!r} in {config_path()}; see `berth server aliases`")
        return resolve(name)
    except SSHConfigError as e:
        raise Failed(str(e)) from None


def _trust_jumps(ws, server: ServerConfig, fingerprints: list[str]) -> None:
    """Jump host keys named with --accept-jump-key are trusted first, hop by hop, and audited."""
    if not fingerprints:
        return
    from app.remote.connect import trust_jump_keys

    if not server.ssh_alias:
        raise Failed("--accept-jump-key: this server has no ssh alias, so no jump hosts")

    def record(added):
        for entry in added:
            ws.audit.record("hostkey.trust", "ok", server=server.name, ssh_user=server.user,
                            detail=f"jump host {entry}")
            print(f"trusted jump host {entry}", file=sys.stderr)

    try:
        record(trust_jump_keys(server, tuple(fingerprints), ws.ask_passphrase))
    except RemoteError as e:
        record(e.detail.get("jump_keys_added", ()))
        refused = e.code in (errors.JUMP_HOST_KEY_UNKNOWN, errors.JUMP_HOST_KEY_CHANGED)
        ws.audit.record("hostkey.refused" if refused else "connect", "failed", server=server.name,
                        ssh_user=server.user, detail=str(e))
        raise


def ask_passphrase(path: str):
    """On a terminal only: asked once per key and run; keeping it in the keyring is the operator's call."""
    import getpass

    from app.remote.credentials import secure_keyring

    passphrase = getpass.getpass(f"Passphrase for {path}: ")
    if passphrase and not secure_keyring():
        print("berth: no secure keyring on this computer: the passphrase is not kept, and is asked again next run",
              file=sys.stderr)
        return passphrase, False
    keep = input("Keep it in the system keyring? [y/N] ").strip().lower() in ("y", "yes") if passphrase else False
    return passphrase, keep


def _local_user() -> str:
    import getpass

    return getpass.getuser()
