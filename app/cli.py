"""`berth <subcommand>`: the operations of the console, headless and scriptable.

Exit codes: 0 success, 1 the operation failed (one clear line on stderr), 2 wrong usage."""
import argparse
import json
import sys
from pathlib import Path

from app.agent.intervals import MAX_INTERVAL, MIN_INTERVAL
from app.bundle import BundleError
from app.cli_output import ProgressPrinter, human_bytes, print_json, print_table
from app.deploy import queries
from app.deploy.changes import change, run_to_end
from app.deploy.deploy import Deploy
from app.deploy.errors import OperationFailed
from app.remote.errors import RemoteError
from app.store.servers import ServerConfig, UnknownServer


class Failed(Exception):
    """Ends the command with exit code 1 and this message."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="berth", description="Deploy, serve and roll back model bundles.")
    p.add_argument("-v", "--verbose", action="store_true", help="show server logs and pip output")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    srv = sub.add_parser("server", help="add, list and check servers").add_subparsers(dest="action", metavar="ACTION")
    a = srv.add_parser("add", help="add an SSH server (its host key must be trusted)")
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
    a.add_argument("--env", default="", help="environment label, e.g. staging or production")
    _timeout_flags(a)
    a.add_argument("--accept-host-key", metavar="SHA256:...", help="trust the host key with this fingerprint")
    _jump_key_flag(a)
    a = srv.add_parser("list", help="list servers")
    a.add_argument("--json", action="store_true")
    a = srv.add_parser("aliases", help="the Host aliases of ~/.ssh/config")
    a.add_argument("--json", action="store_true")
    a = srv.add_parser("check", help="connect; print Python version, root and free disk")
    a.add_argument("name")
    a.add_argument("--accept-host-key", metavar="SHA256:...", help="trust this (unknown) host key")
    _jump_key_flag(a)
    srv.add_parser("remove", help="remove a server from this computer's list").add_argument("name")
    srv.add_parser("forget-key", help="forget a server's trusted host key").add_argument("name")
    a = srv.add_parser("activity", help="what Berth ran on a server (newest first), and how to run it by hand")
    a.add_argument("name")
    a.add_argument("--limit", type=int, default=30)
    a.add_argument("--json", action="store_true")
    a = srv.add_parser("unlock", help="show who holds a server's lock; end a stuck agent after confirming")
    a.add_argument("name")
    a.add_argument("--yes", action="store_true", help="do not ask (scripts): end the holder shown")
    a.add_argument("--reason", default="", help="why (kept in the audit log)")

    a = deploy_parser = sub.add_parser("deploy", help="deploy a bundle folder or .tar.gz")
    a.add_argument("path", type=Path)
    a.add_argument("--server", required=True)
    a.add_argument("--keep", type=int, default=5, help="releases kept on the server (default 5)")

    a = sub.add_parser("status", help="what runs where")
    a.add_argument("--server")
    a.add_argument("--json", action="store_true")

    a = sub.add_parser("releases", help="a model's releases on a server")
    a.add_argument("model")
    a.add_argument("--server", required=True)
    a.add_argument("--json", action="store_true")

    a = sub.add_parser("predict", help="send one input to a model; prints its JSON output")
    a.add_argument("model")
    a.add_argument("--server", required=True)
    a.add_argument("--input", required=True, metavar="JSON_OR_@FILE")

    a = sub.add_parser("rollback", help="make an earlier release current (default: the one before)")
    change_parsers = [a]
    a.add_argument("model")
    a.add_argument("--server", required=True)
    a.add_argument("--to", metavar="VERSION")
    for name, text in (("stop", "stop a model's runner"), ("start", "start a model's current release")):
        a = sub.add_parser(name, help=text)
        change_parsers.append(a)
        a.add_argument("model")
        a.add_argument("--server", required=True)

    aud = sub.add_parser("audit", help="the audit log: list, verify, export, sync").add_subparsers(
        dest="action", metavar="ACTION")
    a = aud.add_parser("list", help="newest events first")
    _audit_filters(a)
    a.add_argument("--json", action="store_true")
    a.add_argument("--limit", type=int, default=1000)
    a = aud.add_parser("verify", help="check the hash chain; exit 1 and name the first broken event")
    a.add_argument("--json", action="store_true")
    a = aud.add_parser("export", help="the events as csv, json, or a report in html or pdf")
    _audit_filters(a)
    a.add_argument("--format", choices=("csv", "json", "html", "pdf"), help="default: from the file's extension")
    a.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    a = aud.add_parser("sync", help="import the events of servers' journals this desktop has not seen")
    a.add_argument("--server", help="one server (default: all but local)")

    a = sub.add_parser("settings", help="Berth's settings (list, or `set KEY VALUE`)")
    a.add_argument("words", nargs="*", metavar="set KEY VALUE")
    a.add_argument("--json", action="store_true")

    bnd = sub.add_parser("bundle", help="create, check and pack bundles").add_subparsers(dest="action", metavar="ACTION")
    a = bnd.add_parser("init", help="a working bundle to start from")
    a.add_argument("dir", type=Path)
    a.add_argument("--name", required=True)
    a = bnd.add_parser("check", help="validate a bundle folder or archive")
    a.add_argument("path", type=Path)
    a.add_argument("--json", action="store_true")
    a = bnd.add_parser("pack", help="reproducible .tar.gz of a bundle folder")
    a.add_argument("dir", type=Path)
    a.add_argument("-o", "--output", type=Path, required=True)

    a = sub.add_parser("monitor", help="live CPU, memory, traffic and latency of servers and their models")
    a.add_argument("--server", help="one server (default: all)")
    a.add_argument("--model", help="only this model")
    a.add_argument("--once", action="store_true", help="one sample (measured over one interval), then exit")
    a.add_argument("--json", action="store_true", help="JSON: a list with --once, else one line per sample")
    a.add_argument("--interval", type=_interval, default=1.0, metavar="S", help="seconds between samples, "
                   "0.25-60 (default 1)")

    for a in (deploy_parser, *change_parsers):
        a.add_argument("--reason", default="", help="why (kept in the audit log; Berth can require one for "
                                                     "production servers)")

    sub.add_parser("demo", help="deploy the example bundle to `local`, predict, deploy v2, roll back")
    return p


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command or (args.command in ("server", "audit", "bundle") and not args.action):
        parser.parse_args([*argv, "--help"])
        return 2
    try:
        return COMMANDS[args.command](args) or 0
    except (Failed, OperationFailed, RemoteError, BundleError, UnknownServer, ValueError, OSError) as e:
        log = getattr(e, "log", None) or (getattr(e, "detail", None) or {}).get("log")
        if args.verbose and log:
            for line in log:
                print(f"    | {line}", file=sys.stderr)
        print(f"berth: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("berth: interrupted", file=sys.stderr)
        return 130


def _one_line(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return text.replace("\n", " ")


def _ws(ask_passphrase=None):
    from app.workspace import Workspace

    return Workspace(ask_passphrase=ask_passphrase)


def _timeout_flags(a) -> None:
    for flag, what in (("connect-timeout", "TCP connect and SSH handshake (default: the alias's ConnectTimeout, "
                                           "else 15)"),
                       ("auth-timeout", "login (default: the connect timeout)"),
                       ("command-timeout", "how long an agent command may stay silent (default 900)"),
                       ("keepalive", "seconds between keepalives (default: ServerAliveInterval, else 15)")):
        a.add_argument(f"--{flag}", type=float, default=0, metavar="SECONDS", help=what)


def _jump_key_flag(a) -> None:
    a.add_argument("--accept-jump-key", action="append", default=[], metavar="SHA256:...",
                   help="trust the (unknown) host key of a jump host with this fingerprint; repeat for several "
                        "hops (--accept-host-key trusts only the server itself)")


def _server_from_args(args) -> ServerConfig:
    """Explicit flags win over the alias's HostName, User and Port."""
    host, port, user = args.host, args.port, args.user
    if args.ssh_alias:
        from app.remote.sshconfig import SSHConfigError, config_path, list_aliases, resolve

        try:
            if args.ssh_alias not in list_aliases():
                raise Failed(f"no Host {args.ssh_alias!r} in {config_path()}; see `berth server aliases`")
            alias = resolve(args.ssh_alias)
        except SSHConfigError as e:
            raise Failed(str(e)) from None
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
        action = "hostkey.refused" if e.code.startswith("jump_host_key") else "connect"
        ws.audit.record(action, "failed", server=server.name, ssh_user=server.user, detail=str(e))
        raise


def _ask_passphrase(path: str):
    """On a terminal only: asked once per key and run; keeping it in the keyring is the operator's call."""
    import getpass

    passphrase = getpass.getpass(f"Passphrase for {path}: ")
    keep = input("Keep it in the system keyring? [y/N] ").strip().lower() in ("y", "yes") if passphrase else False
    return passphrase, keep


def cmd_server(args) -> int:
    ws = _ws(_ask_passphrase if sys.stdin.isatty() else None)
    if args.action == "add":
        server = _server_from_args(args)
        if ws.servers.exists(server.name):
            raise Failed(f"a server named {server.name!r} exists already")
        _trust_jumps(ws, server, args.accept_jump_key)
        info = ws.add_server(server, args.accept_host_key)
        print(f"added {args.name}: {server.describe()}, Python {info['python']}, root {info['root']}")
    elif args.action == "list":
        rows = [dict(s.__dict__) for s in ws.servers.list()]
        print_json(rows) if args.json else print_table(rows, ["name", "kind", "host", "port", "user", "ssh_alias",
                                                              "root", "environment"])
    elif args.action == "aliases":
        _print_aliases(args.json)
    elif args.action == "check":
        _trust_jumps(ws, ws.servers.get(args.name), args.accept_jump_key)
        with ws.connect(args.name, args.accept_host_key) as t:
            info = t.hello()
        print(f"{args.name}: Python {info['python']} ({info['platform']})")
        print(f"root: {info['root']}")
        print(f"free disk: {human_bytes(info['disk_free'])} of {human_bytes(info['disk_total'])}")
    elif args.action == "remove":
        ws.remove_server(args.name)
        print(f"removed {args.name}")
    elif args.action == "forget-key":
        print(f"forgot {ws.forget_host_key(args.name)} host key(s) of {args.name}")
    elif args.action == "activity":
        rows = ws.activity.list(ws.servers.get(args.name).name, args.limit)
        if args.json:
            print_json(rows)
        else:
            print_table([dict(r, seconds=f"{r['seconds']:.2f}") for r in rows],
                        ["ts", "command", "summary", "seconds", "outcome", "message"])
            if rows and rows[0]["by_hand"]:
                print(f"\nby hand, the last one ({rows[0]['command']}):\n{rows[0]['by_hand']}")
    elif args.action == "unlock":
        return _unlock(ws, args)
    return 0


def _unlock(ws, args) -> int:
    from app.deploy.changes import break_lock, lock_state

    with ws.connect(args.name) as t:
        lock = lock_state(t)
        holder = lock.get("holder") or {}
        if not lock["held"]:
            left = f"; the last holder (pid {holder['pid']}, {holder.get('what')}) ended without releasing it, " \
                   "and the system released it" if holder.get("pid") else ""
            print(f"{args.name} is not locked{left}")
            return 0
        print(f"{args.name} is locked by {holder.get('who')} running '{holder.get('what')}' since "
              f"{holder.get('since')} (pid {holder.get('pid')}, {'alive' if lock['holder_alive'] else 'gone'})")
        if not args.yes:
            if not sys.stdin.isatty():
                raise Failed("not breaking the lock without a confirmation: run in a terminal, or add --yes")
            answer = input(f"End pid {holder.get('pid')} to break the lock? Type the server's name to confirm: ")
            if answer.strip() != args.name:
                print("left as it is")
                return 1
        result = break_lock(t, ws.audit, holder.get("pid"), args.reason)
    print(result["detail"])
    return 0


def _print_aliases(as_json: bool) -> None:
    from app.remote.sshconfig import SSHConfigError, list_aliases, resolve

    rows = []
    try:
        for name in list_aliases():
            ep = resolve(name)
            rows.append({"alias": name, "host": ep.host, "port": ep.port, "user": ep.user,
                         "proxy_jump": ",".join(j.describe() for j in ep.jumps),
                         "identity_files": list(ep.identity_files), "identities_only": ep.identities_only})
    except SSHConfigError as e:
        raise Failed(str(e)) from None
    print_json(rows) if as_json else print_table(rows, ["alias", "host", "port", "user", "proxy_jump"])


def cmd_deploy(args) -> int:
    ws = _ws()
    ws.check_reason(args.server, args.reason)
    with ws.connect(args.server) as t:
        print(f"Deploying {args.path} to {args.server}", file=sys.stderr)
        job = Deploy(t, args.path, ws.audit, keep=args.keep, reason=args.reason)
        run_to_end(job.run(), ProgressPrinter(args.verbose))
    r = job.result
    if r.get("already"):
        print(f"{job.trail.facts['model']} {r['version']} was already current and running on {args.server}")
    else:
        print(f"{job.trail.facts['model']} {r['version']} is current on {args.server} (was {r.get('previous') or 'nothing'})")
    return 0


def cmd_status(args) -> int:
    ws = _ws()
    names = [args.server] if args.server else [s.name for s in ws.servers.list()]
    rows, failed = [], []
    for name in names:
        try:
            with ws.connect(name) as t:
                rows += ws.server_status(t)
        except (RemoteError, OSError) as e:
            if args.server:
                raise
            failed.append(name)
            print(f"berth: {name}: {_one_line(e)}", file=sys.stderr)
    rows = [{k: r.get(k) for k in ("server", "model", "version", "state", "port", "pid")} for r in rows]
    print_json(rows) if args.json else print_table(rows, ["server", "model", "version", "state", "port", "pid"])
    return 1 if failed else 0


def cmd_releases(args) -> int:
    ws = _ws()
    with ws.connect(args.server) as t:
        rows = queries.releases(t, args.model)
    if args.json:
        print_json([{k: r[k] for k in ("version", "current", "sha256", "deployed_at")} for r in rows])
    else:
        table = [dict(r, current="*" if r["current"] else "", sha256=(r["sha256"] or "")[:12],
                      by=(r.get("deployed_by") or {}).get("user", "")) for r in reversed(rows)]
        print_table(table, ["current", "version", "deployed_at", "by", "sha256"])
    return 0


def cmd_predict(args) -> int:
    raw = args.input
    if raw.startswith("@"):
        try:
            raw = Path(raw[1:]).read_text()
        except OSError as e:
            raise Failed(f"cannot read the input file {raw[1:]}: {e.strerror}") from None
    try:
        json.loads(raw)
    except ValueError as e:
        raise Failed(f"the input is not valid JSON: {e}") from None
    ws = _ws()
    with ws.connect(args.server) as t:
        output, seconds, headers = queries.predict(t, args.model, raw.encode())
    print(json.dumps(output))
    if args.verbose:
        print(f"{headers.get('X-Berth-Model')} {headers.get('X-Berth-Version')} answered in {seconds * 1000:.1f} ms",
              file=sys.stderr)
    return 0


def _change(action: str):
    def run(args) -> int:
        ws = _ws()
        params = {"to": args.to} if getattr(args, "to", None) else {}
        if action == "rollback":  # start and stop restore or pause what is deployed
            ws.check_reason(args.server, args.reason)
        with ws.connect(args.server) as t:
            result = run_to_end(change(t, ws.audit, action, args.model, reason=args.reason, **params),
                                ProgressPrinter(args.verbose))
        what = {"rollback": f"{result.get('previous')} -> {result.get('version')}", "start": f"{result.get('version')} running",
                "stop": f"{result.get('version')} {result.get('detail')}"}[action]
        print(f"{action} {args.model} on {args.server}: {what}")
        return 0
    return run


def _audit_filters(a) -> None:
    a.add_argument("--since", metavar="TIME", help="UTC date/time (2026-11-01, 2026-11-01T10:00) or age (7d, 24h)")
    a.add_argument("--until", metavar="TIME", help="UTC date/time; a date means its whole day")
    for name in ("server", "model", "actor", "text"):
        a.add_argument(f"--{name}")
    a.add_argument("--action", dest="event_action", help="e.g. deploy, rollback, server.add (deploy also matches deploy.*)")
    a.add_argument("--outcome", help="ok, failed, started, cancelled, or interrupted")


def _audit_filter(args):
    from app.audit.period import parse_time
    from app.audit.query import AuditFilter

    for bound in ("since", "until"):
        if getattr(args, bound):
            parse_time(getattr(args, bound))  # a clear error before any work
    return AuditFilter(action=args.event_action or "", **{k: getattr(args, k) or "" for k in
                                                          ("server", "model", "text", "actor", "since", "until", "outcome")})


def cmd_audit(args) -> int:
    ws = _ws()
    if args.action == "verify":
        from app.audit.chain import verify

        verdict = verify(ws.db.conn)
        print_json(verdict.to_dict()) if args.json else print(verdict.message)
        return 0 if verdict.ok else 1
    if args.action == "sync":
        return _audit_sync(ws, args.server)
    flt = _audit_filter(args)
    if args.action == "export":
        return _audit_export(ws, flt, args)
    from app.audit.query import query_events

    rows = [{k: r[k] for k in ("id", "ts", "actor", "ssh_user", "server", "model", "version", "sha256", "action",
                                "outcome", "state", "old", "new", "reason", "detail", "ref", "origin")}
            for r in query_events(ws.db, flt, limit=args.limit)]
    if args.json:
        print_json(rows)
    else:
        table = [dict(r, outcome=r["state"], change=f"{r['old']} -> {r['new']}" if r["old"] or r["new"] else "")
                 for r in rows]
        print_table(table, ["ts", "actor", "server", "model", "version", "action", "outcome", "change", "detail"])
    return 0


def _audit_export(ws, flt, args) -> int:
    from app.audit.actor import actor_label, local_actor
    from app.audit.export import export_events

    fmt = args.format or args.output.suffix.lstrip(".").lower()
    if fmt not in ("csv", "json", "html", "pdf"):
        raise Failed(f"cannot tell the format from {args.output.name!r}: give --format csv|json|html|pdf")
    writer = None
    if fmt == "pdf":
        from app.ui.audit.report_pdf import write_pdf as writer  # Qt's PDF writer; runs headless
    result = export_events(ws.db, flt, fmt, args.output, exported_by=actor_label(local_actor()), pdf_writer=writer)
    checked = result.verdict.message if result.verdict else "the chain was not walked for a CSV (`berth audit verify`)"
    print(f"{result.count} events to {result.path} ({fmt}); {checked}")
    return 0


def _audit_sync(ws, only: str | None) -> int:
    from app.store.servers import LOCAL

    names = [only] if only else [s.name for s in ws.servers.list() if s.name != LOCAL]
    failed = 0
    for name in names:
        try:
            with ws.connect(name) as t:
                r = ws.sync_journal(t)
        except (RemoteError, OSError) as e:
            if only:
                raise
            failed += 1
            print(f"berth: {name}: {_one_line(e)}", file=sys.stderr)
            continue
        print(f"{name}: {r.imported} new of {r.seen} journal events" + (f"; {r.problem}" if r.problem else ""))
    return 1 if failed else 0


def cmd_settings(args) -> int:
    ws = _ws()
    if args.words:
        if len(args.words) != 3 or args.words[0] != "set":
            raise Failed("usage: berth settings set KEY VALUE")
        old, new = ws.set_setting(args.words[1], args.words[2])
        print(f"{args.words[1]}: {old} -> {new}")
        return 0
    rows = ws.settings.describe()
    print_json(rows) if args.json else print_table(rows, ["key", "value", "default", "meaning"])
    return 0


def cmd_bundle(args) -> int:
    from app.bundle import check_path, init_bundle, pack

    if args.action == "init":
        for path in init_bundle(args.dir, args.name):
            print(path)
        print(f"created bundle {args.name} in {args.dir}; check it with `berth bundle check {args.dir}`", file=sys.stderr)
        return 0
    if args.action == "pack":
        sha = pack(args.dir, args.output)
        print(f"{args.output}  sha256 {sha}")
        return 0
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
    _ws().audit.record("bundle.check", "ok" if result.ok else "failed", model=m.name if m else "",
                       version=m.version if m else "",
                       detail=f"{args.path}: " + ("no problems" if result.ok else "; ".join(map(str, result.errors))))
    return 0 if result.ok else 1


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise argparse.ArgumentTypeError(f"must be {MIN_INTERVAL:g} to {MAX_INTERVAL:g} seconds")
    return value


def cmd_monitor(args) -> int:
    from app.monitor.report import monitor_json, print_monitor

    ws = _ws()
    names = [ws.servers.get(args.server).name] if args.server else [s.name for s in ws.servers.list()]
    if args.once:
        samples, failed = [], []
        for name in names:
            try:
                samples.append(_one_sample(ws, name, args.interval))
            except (RemoteError, OSError) as e:
                if args.server:
                    raise
                failed.append(name)
                print(f"berth: {name}: {_one_line(e)}", file=sys.stderr)
        _check_model(args.model, samples)
        if args.json:
            print_json([monitor_json(s, args.model) for s in samples])
        else:
            print_monitor(samples, args.model)
        return 1 if failed else 0
    return _monitor_live(names, args)


def _one_sample(ws, name: str, interval: float) -> dict:
    """A sample measured over a whole interval (the first one of a stream is over a short one)."""
    from app.store.servers import LOCAL

    if name == LOCAL:
        from app.monitor.local_sampler import LocalSampler

        sampler = LocalSampler(ws.servers.get(LOCAL).root, interval)
        sampler.sample()
        import time

        time.sleep(interval)
        sample = sampler.sample()
    else:
        with ws.connect(name) as t:
            stream = t.stream("sample", {"interval": interval, "count": 2})
            with stream:
                events = [e for e in stream if e.get("event") == "sample"]
        if not events:
            raise Failed(f"{name}: the agent sent no sample")
        sample = {k: v for k, v in events[-1].items() if k != "event"}
    sample["server"] = name
    return sample


def _check_model(model: str | None, samples: list[dict]) -> None:
    if model and samples and not any(model in (s.get("models") or {}) for s in samples):
        where = ", ".join(s["server"] for s in samples)
        raise Failed(f"model '{model}' is not running on {where}; see `berth status`")


def _monitor_live(names: list[str], args) -> int:
    import queue

    from app.monitor.report import monitor_json, print_monitor
    from app.monitor.stream import SampleStream, open_source

    inbox: queue.Queue = queue.Queue()
    streams = [SampleStream(name, open_source(name), args.interval,
                            on_sample=lambda s: inbox.put(("sample", s)),
                            on_state=lambda server, state, detail: inbox.put(("state", (server, state, detail))))
               for name in names]
    latest: dict[str, dict] = {}
    first_round: set[str] = set()
    model_checked = False
    tty = sys.stdout.isatty()
    try:
        for s in streams:
            s.start()
        while True:
            kind, value = inbox.get()
            if kind == "state":
                server, state, detail = value
                if state == "reconnecting":
                    first_round.add(server)
                    print(f"berth: {server}: reconnecting: {detail}", file=sys.stderr, flush=True)
                elif state == "live":
                    print(f"berth: {server}: live", file=sys.stderr, flush=True)
                continue
            latest[value["server"]] = value
            first_round.add(value["server"])
            if not model_checked and len(first_round) == len(names):
                _check_model(args.model, list(latest.values()))  # once: a model may stop later
                model_checked = True
            if args.json:
                print(json.dumps(monitor_json(value, args.model)), flush=True)
                continue
            if len(latest) < len(names) and len(first_round) < len(names):
                continue  # wait for every server's first sample before the first table
            if tty:
                sys.stdout.write("\033[H\033[2J")
            print_monitor([latest[n] for n in names if n in latest], args.model)
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
    finally:
        for s in streams:
            s.stop()


def cmd_demo(args) -> int:
    from app.demo import run_demo

    return run_demo(_ws(), verbose=args.verbose)


def _local_user() -> str:
    import getpass

    return getpass.getuser()


COMMANDS = {
    "server": cmd_server, "deploy": cmd_deploy, "status": cmd_status, "releases": cmd_releases,
    "predict": cmd_predict, "rollback": _change("rollback"), "start": _change("start"), "stop": _change("stop"),
    "audit": cmd_audit, "settings": cmd_settings, "bundle": cmd_bundle, "monitor": cmd_monitor, "demo": cmd_demo,
}
