"""`berth server set-smtp S --host H ...`: the SMTP relay a server's e-mail alerts go through.

The relay password is kept in this computer's keyring (`smtp-password:S`) and sent to the server,
which needs it to send mail with no desktop connected; it is never a flag (argv is visible in
`ps`). From the keyring, else stdin's first line with --password-stdin, else asked on a terminal."""
from __future__ import annotations

import sys
from pathlib import Path

from .base import Failed

SECURITY = ("starttls", "tls", "none")
CA_MAX = 256 * 1024


def add_arguments(actions) -> None:
    a = actions.add_parser("set-smtp", help="the SMTP relay this server's e-mail alerts go through (password in "
                                            "the keyring and, readable by the agent's user only, on the server)")
    a.add_argument("name")
    a.add_argument("--host", required=True, help="the relay, e.g. smtp.example.com")
    a.add_argument("--port", type=int, help="default 587 for starttls, 465 for tls, 25 for none")
    a.add_argument("--from", dest="sender", required=True, metavar="ADDRESS", help="the mail's From address")
    a.add_argument("--user", default="", help="log in as this user (its password: keyring, stdin or asked)")
    a.add_argument("--security", default="starttls", choices=SECURITY,
                   help="starttls (default), tls (TLS from the start, port 465), none (loopback relays only, "
                        "unless --allow-plaintext)")
    a.add_argument("--allow-plaintext", action="store_true", help="allow --security none to a relay that is not "
                                                                  "on the server itself (mail and password unencrypted)")
    a.add_argument("--ca-file", metavar="PATH", help="a PEM file on this computer with the company CA that signed "
                                                     "the relay's certificate (sent to the server)")
    a.add_argument("--password-stdin", action="store_true", help="read the relay password from stdin's first line "
                                                                 "and keep it in the keyring")
    a.add_argument("--test", metavar="ADDRESS", help="then send a test mail to ADDRESS from the server, and print "
                                                     "what the relay answered (exit 1 if it refused)")


def run(args, ws) -> int:
    from app.deploy.errors import OperationFailed
    from app.deploy.smtp import set_smtp, test_smtp

    server = ws.servers.get(args.name)
    settings = {"host": args.host, "port": args.port, "from": args.sender, "user": args.user,
                "security": args.security, "ca_pem": _ca_pem(args.ca_file) if args.ca_file else "",
                "allow_plaintext": args.allow_plaintext}
    password, new = _password(args) if args.user else ("", False)
    with ws.connect(server.name) as t:
        try:
            result = set_smtp(t, ws.audit, settings, password)
        except OperationFailed as e:
            raise Failed(f"{server.name}: {e}") from None
        if new:  # kept once the server took it: a refused setting leaves the keyring as it was
            _keep(args.name, password)
        print(f"{server.name}: e-mail alerts go through the {result['detail']}")
        if not args.test:
            return 0
        sent = test_smtp(t, args.test)
    if not sent["ok"]:
        raise Failed(f"{server.name}: the test mail to {args.test} was not sent ({sent['status']}): {sent['answer']}")
    print(f"{server.name}: test mail to {args.test}: the relay answered {sent['status']} {sent['answer']}")
    return 0


def _ca_pem(path: str) -> str:
    file = Path(path).expanduser()
    try:
        if file.stat().st_size > CA_MAX:
            raise Failed(f"--ca-file {path}: over 256 KB; give the PEM file of the CA certificate(s) only")
        text = file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        raise Failed(f"--ca-file {path}: cannot read it as a PEM file: {getattr(e, 'strerror', None) or e}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise Failed(f"--ca-file {path}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)")
    return text


def _password(args) -> tuple[str, bool]:
    """(the relay password, whether it is new for the keyring): stdin, the keyring, or asked on a terminal."""
    from app.remote.credentials import get_secret, smtp_password_account

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise Failed("--password-stdin: stdin gave no password")
    else:
        password = get_secret(smtp_password_account(args.name)) or ""
        if password:
            return password, False
        if not sys.stdin.isatty():
            raise Failed(f"no SMTP password for {args.name} in the keyring: give it once on stdin with "
                         f"--password-stdin (it is kept in the keyring), or run in a terminal to be asked")
        import getpass

        password = getpass.getpass(f"SMTP password of {args.user} at {args.host}: ")
        if not password:
            raise Failed("no password typed; nothing was changed")
    return password, True


def _keep(name: str, password: str) -> None:
    from app.remote.credentials import NoSecureKeyring, set_secret, smtp_password_account

    try:
        set_secret(smtp_password_account(name), password)
    except NoSecureKeyring:
        print("berth: no secure keyring on this computer: the SMTP password is on the server only, and is asked "
              "again the next time", file=sys.stderr)
