"""The e-mail alert channel: one plain-text mail per notification, through the server's SMTP relay.

Runs on the server, in the alert evaluator (stdlib only, Python 3.8+), so a mail goes out with no
desktop connected. The relay is the one `berth server set-smtp` stored in <root>/.berth/smtp.json
(alertsmtp.py). TLS always verifies the relay's certificate (the system's CAs, or the company CA
given with --ca-file): a relay that cannot prove who it is never sees the password. The result
reports the relay's own answer (code and text), and never contains the password."""
import os
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid

from . import alertsmtp
from .jobclock import iso, now
from .layout import AgentError

SUBJECT_MAX = 200


def send(channel, payload, timeout, root=None):
    """Send `payload` (berth-alert/1) to channel["to"]; -> {"ok", "status", "answer"}.

    The relay's settings come from channel["settings"] (a dict, as smtp.json holds it), else from
    the smtp.json of `root`, channel["root"], or the root this agent is installed in (the evaluator
    runs the installed agent: <root>/.berth/agent/<version>/berth_agent/)."""
    try:
        to = alertsmtp.check_address(channel.get("to"), "the alert's To address")
    except AgentError as e:
        return _result(False, "bad_channel", str(e))
    root = root or channel.get("root") or installed_root()
    settings = channel.get("settings") or (alertsmtp.read(root) if root else None)
    if not settings:
        return _result(False, "not_configured", "this server has no SMTP relay: run `berth server set-smtp SERVER "
                                                "--host HOST --from ADDRESS` first")
    message = build_message(payload, settings["from"], to)
    try:
        code, answer = _deliver(settings, message, to, timeout)
    except Exception as e:  # one line for `berth alerts`, whatever the relay or the network did
        status, text = explain(e, settings)
        return _result(False, status, _scrubbed(text, settings))
    return _result(True, "%d" % code, _scrubbed(answer, settings))


def installed_root(here=None):
    """The server root whose .berth/agent/ holds this module, or None (run from a source tree)."""
    package = os.path.dirname(os.path.abspath(here or __file__))  # .../.berth/agent/<version>/berth_agent
    agent_dir = os.path.dirname(os.path.dirname(package))
    for _ in range(2):  # .berth/agent/<version>, or .berth/agent/<user>/<version> in a shared root
        if os.path.basename(agent_dir) == "agent" and os.path.basename(os.path.dirname(agent_dir)) == ".berth":
            return os.path.dirname(os.path.dirname(agent_dir))
        agent_dir = os.path.dirname(agent_dir)
    return None


def alert_smtp_test(ctx, req):
    """Agent command: one test mail to req["to"] through this server's relay, now; the result is
    the relay's answer (`berth server set-smtp --test ADDRESS`). Changes nothing on the server."""
    server = str(req.get("server") or "this server")
    sent = iso(now())
    payload = {"version": "berth-alert/1", "status": "test", "group": server, "server": server, "sent": sent,
               "alerts": [{"rule": "smtp-test", "model": None, "expr": "", "state": "firing", "since": sent,
                           "value": None, "summary": "a test mail from `berth server set-smtp --test`: the relay "
                                                     "works for Berth's alerts"}]}
    timeout = req.get("timeout", 30)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout <= 120:
        raise AgentError("timeout must be a number of seconds, at most 120", "usage")
    return send({"kind": "email", "to": req.get("to")}, payload, timeout, root=ctx.root.path)


def _result(ok, status, answer):
    return {"ok": ok, "status": status, "answer": answer}


def _deliver(settings, message, to, timeout):
    """MAIL, RCPT, DATA by hand: smtplib's sendmail drops the relay's answer to DATA, which is
    what says the mail was queued ("250 2.0.0 Ok: queued as ...")."""
    host, port, security = settings["host"], int(settings["port"]), settings.get("security", "starttls")
    context = tls_context(settings)
    if security == "tls":
        client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    try:
        client.ehlo()
        if security == "starttls":
            if not client.has_extn("starttls"):
                raise NoStartTLS()
            client.starttls(context=context)
            client.ehlo()
        if settings.get("user"):
            client.login(settings["user"], settings.get("password") or "")
        code, answer = client.mail(settings["from"])
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, answer, settings["from"])
        code, answer = client.rcpt(to)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({to: (code, answer)})
        code, answer = client.data(message.as_bytes(policy=SMTP_POLICY))
        if code != 250:
            raise smtplib.SMTPDataError(code, answer)
        return code, _text(answer)
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


class NoStartTLS(Exception):
    """The relay does not offer STARTTLS, so nothing (no password, no mail) is sent in plain text."""


def tls_context(settings):
    """A verifying context: the system's CAs, or only the company CA when one was given."""
    if settings.get("ca_pem"):
        return ssl.create_default_context(cadata=settings["ca_pem"])
    return ssl.create_default_context()


def explain(error, settings):
    """(status, one line) for a failed delivery, naming what to check."""
    where = "the SMTP relay %s:%s" % (settings["host"], settings["port"])
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return "auth_failed", "%s refused the login of %s: %d %s; store the right password with `berth server " \
                              "set-smtp`" % (where, settings.get("user"), error.smtp_code, _text(error.smtp_error))
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        (address, (code, answer)), = error.recipients.items()
        return "refused", "%s refused the recipient %s: %d %s" % (where, address, code, _text(answer))
    if isinstance(error, (smtplib.SMTPSenderRefused, smtplib.SMTPDataError)):
        return "refused", "%s refused the mail: %d %s" % (where, error.smtp_code, _text(error.smtp_error))
    if isinstance(error, smtplib.SMTPNotSupportedError) and settings.get("user"):
        return "auth_failed", "%s offers no AUTH method for the user %s" % (where, settings["user"])
    if isinstance(error, NoStartTLS):
        plain = ", or --security none: it is on loopback" if alertsmtp.is_loopback(str(settings["host"])) else ""
        return "no_starttls", "%s does not offer STARTTLS, so nothing was sent in plain text; use --security tls " \
                              "if it speaks TLS from the start%s" % (where, plain)
    if isinstance(error, ssl.SSLCertVerificationError):
        return "tls_untrusted", "%s's certificate is not trusted: %s; give the company CA with `berth server " \
                                "set-smtp ... --ca-file PATH`" % (where, error.verify_message or error.reason)
    if isinstance(error, ssl.SSLError):
        return "tls_failed", "TLS with %s failed: %s (is --security right? starttls on 587, tls on 465)" % (
            where, error.reason or error)
    if isinstance(error, smtplib.SMTPResponseException):
        return "refused", "%s answered %d %s" % (where, error.smtp_code, _text(error.smtp_error))
    if isinstance(error, (socket.timeout, TimeoutError)) or (
            isinstance(error, smtplib.SMTPServerDisconnected) and "timed out" in str(error)):  # smtplib's wrapping
        return "timeout", "%s did not answer in time" % where
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return "unreachable", "%s hung up: %s" % (where, error)
    if isinstance(error, OSError):
        return "unreachable", "cannot reach %s: %s" % (where, error.strerror or error)
    return "failed", "sending through %s failed: %s: %s" % (where, type(error).__name__, error)


def _text(answer):
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8", "replace")
    return " ".join(str(answer).split())


def _scrubbed(text, settings):
    """A relay may quote what it was sent; the password never leaves in a result."""
    password = settings.get("password")
    return text.replace(password, "***") if password else text


# -- the mail ----------------------------------------------------------------------------------

def subject(payload):
    """`[Berth] FIRING p95_ms>200 on s1/iris`; several alerts: `... down, p95_ms>200 on s1`."""
    alerts = payload.get("alerts") or []
    exprs = []
    for alert in alerts:
        expr = str(alert.get("expr") or alert.get("rule") or "")
        if expr and expr not in exprs:
            exprs.append(expr)
    text = "[Berth] %s %s on %s" % (str(payload.get("status") or "alert").upper(), ", ".join(exprs) or "alert",
                                    payload.get("group") or payload.get("server") or "?")
    text = " ".join(text.split())  # no header injection through a newline in a value
    return text if len(text) <= SUBJECT_MAX else text[:SUBJECT_MAX - 3] + "..."


def body(payload):
    lines = ["Berth alert: %s on %s (sent %s)" % (payload.get("status"), payload.get("group") or payload.get("server"),
                                                  payload.get("sent")), ""]
    for alert in payload.get("alerts") or []:
        where = payload.get("server") or "?"
        if alert.get("model"):
            where += "/%s" % alert["model"]
        value = alert.get("value")
        lines.append("%s %s%s on %s since %s%s" % (
            alert.get("state"), alert.get("rule"), ": %s" % alert["expr"] if alert.get("expr") else "", where,
            alert.get("since"), "" if value is None else ", value %s" % value))
        if alert.get("summary"):
            lines.append("    %s" % alert["summary"])
    lines += ["", "-- ", "Sent by Berth's alert evaluator on %s; see `berth alerts --server %s`." % (
        payload.get("server"), payload.get("server"))]
    return "\n".join(lines) + "\n"


def build_message(payload, sender, to):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject(payload)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid("berth", domain=sender.rsplit("@", 1)[-1])  # no DNS look-up of our name
    message["X-Berth-Status"] = str(payload.get("status"))
    message.set_content(body(payload))
    return message


COMMANDS = {"alert_smtp_test": alert_smtp_test}
