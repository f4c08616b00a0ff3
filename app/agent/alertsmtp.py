"""The server's SMTP relay settings for e-mail alerts, in <root>/.berth/smtp.json (mode 0600).

The relay's password has to be on the server, because the alert evaluator sends mail while no
desktop is connected; it lives only in this file, readable by the agent's user alone. It arrives
inside the JSON request of `alert_smtp_set` (never argv), is written atomically, and is never
returned, journalled or put into an error message."""
import ipaddress
import os
import re
import ssl

from . import journal
from .fsutil import read_json, write_json_atomic
from .layout import AgentError
from .lock import ServerLock
from .operations import _desktop_head

FILE = "smtp.json"
SECURITY = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
ADDRESS_RE = re.compile(r"[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,253}")
CA_MAX = 256 * 1024


def path(root):
    return os.path.join(root.meta, FILE)


def is_loopback(host):
    """`localhost` or a loopback address: the one place a relay may be spoken to in plain text."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host):
    """A host name or an IP address (IPv6 with or without brackets; kept without, as smtplib wants)."""
    if isinstance(host, str):
        try:
            return str(ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host))
        except ValueError:
            if HOST_RE.fullmatch(host):
                return host
    raise AgentError("SMTP host %r is not a host name or address" % (host,), "bad_smtp")


def check_address(text, what):
    if not isinstance(text, str) or not ADDRESS_RE.fullmatch(text):
        raise AgentError("%s %r is not an e-mail address (name@domain)" % (what, text), "bad_smtp")
    return text


def check_settings(req):
    """The settings a request asks for, or the one clear reason they cannot be used (nothing written)."""
    host = check_host(req.get("host"))
    security = req.get("security") or "starttls"
    if security not in SECURITY:
        raise AgentError("SMTP security %r: use %s" % (security, ", ".join(SECURITY)), "bad_smtp")
    if security == "none" and not is_loopback(host) and req.get("allow_plaintext") is not True:
        raise AgentError("security none sends the password and the mail in plain text: it is allowed to a "
                         "loopback relay only, or with --allow-plaintext", "bad_smtp")
    port = req.get("port")
    port = DEFAULT_PORTS[security] if port is None else port
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise AgentError("SMTP port %r: use 1-65535" % (port,), "bad_smtp")
    user = req.get("user") or ""
    password = req.get("password") or ""
    if not isinstance(user, str) or not isinstance(password, str) or "\n" in user or "\r" in user:
        raise AgentError("SMTP user and password must be one line of text each", "bad_smtp")
    if user and not password:
        raise AgentError("SMTP user %r has no password: store it in the keyring first" % user, "bad_smtp")
    ca_pem = req.get("ca_pem") or ""
    if ca_pem:
        if not isinstance(ca_pem, str) or len(ca_pem) > CA_MAX:
            raise AgentError("the CA file must be PEM text under 256 KB", "bad_smtp")
        try:
            ssl.create_default_context(cadata=ca_pem)
        except (ssl.SSLError, ValueError) as e:
            raise AgentError("the CA file holds no usable PEM certificate: %s" % e, "bad_smtp")
    settings = {"host": host, "port": port, "from": check_address(req.get("from"), "From address"),
                "security": security, "user": user, "password": password if user else "", "ca_pem": ca_pem}
    if security == "none" and not is_loopback(host):
        settings["allow_plaintext"] = True
    return settings


def read(root_path):
    """The settings of the root at `root_path`, or None when `berth server set-smtp` was never run."""
    from .layout import Root

    data = read_json(path(Root(root_path)))
    return data if isinstance(data, dict) and data.get("host") else None


def public(settings):
    """What may be shown and journalled: everything but the password (and the CA's bulk)."""
    shown = {k: v for k, v in settings.items() if k not in ("password", "ca_pem")}
    shown["password"] = bool(settings.get("password"))
    shown["ca"] = bool(settings.get("ca_pem"))
    return shown


def describe(settings):
    login = " as %s" % settings["user"] if settings.get("user") else ""
    return "SMTP relay %s:%d (%s)%s, from %s%s" % (settings["host"], settings["port"], settings["security"], login,
                                                   settings["from"], ", company CA" if settings.get("ca_pem") else "")


def alert_smtp_set(ctx, req):
    """Agent command: check, then write smtp.json (0600, atomically) under the lock, journalled
    without the password."""
    settings = check_settings(req)
    root = ctx.root.ensure()
    ids = req.get("event_ids") if isinstance(req.get("event_ids"), dict) else {}
    detail = describe(settings)
    with ServerLock(root.lock, {"who": ctx.who(), "what": "server.smtp"}):
        started = journal.append(root, "server.smtp", "started", ctx.actor, ids.get("started"),
                                 desktop_head=_desktop_head(req), reason=req.get("reason"))
        try:
            write_json_atomic(path(root), settings, private=True)  # 0600 before a byte is written
            os.chmod(path(root), 0o600)
        except OSError as e:
            journal.append(root, "server.smtp", "failed", ctx.actor, ids.get("outcome"), ref=started["id"],
                           detail="cannot write %s: %s" % (FILE, e.strerror or e))
            raise
        journal.append(root, "server.smtp", "ok", ctx.actor, ids.get("outcome"), ref=started["id"], detail=detail)
    return {"detail": detail, "settings": public(settings)}


COMMANDS = {"alert_smtp_set": alert_smtp_set}
