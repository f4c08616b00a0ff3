"""Real receivers for the alert channels: an SMTP relay (aiosmtpd) with STARTTLS or TLS from the
start, signed by a test CA made here, and AUTH; and Debian's prometheus-alertmanager on loopback."""
import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

try:
    from .sshd import free_port  # type: ignore[import-not-found]
except ImportError:
    from sshd import free_port

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


class RelayCA:
    """A CA and a certificate for localhost / 127.0.0.1 signed by it, as PEM files in `folder`."""

    def __init__(self, folder: Path):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Berth test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
              .not_valid_after(now + datetime.timedelta(days=2))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        self.ca_file = folder / "ca.pem"
        self.ca_file.write_bytes(ca.public_bytes(pem))
        self.cert_file = folder / "relay.pem"
        self.cert_file.write_bytes(cert.public_bytes(pem))
        self.key_file = folder / "relay.key"
        self.key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        self.ca_pem = self.ca_file.read_text()

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


class Relay:
    """A real SMTP server on loopback: `mails` holds what it accepted (envelope + parsed message),
    `logins` the user names it let in, `unknown` addresses it refuses. security: "starttls" (STARTTLS required before AUTH and
    MAIL), "tls" (TLS from the start) or "none"; user/password set: AUTH required."""

    def __init__(self, ca: RelayCA | None, security="starttls", user="", password="", unknown=()):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.mails, self.logins, self.port = [], [], free_port()
        relay = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address in unknown:
                    return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                import email
                from email.policy import default

                relay.mails.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                    "message": email.message_from_bytes(envelope.content, policy=default)})
                return "250 2.0.0 Ok: queued as BERTH%d" % len(relay.mails)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == user and auth_data.password.decode() == password
            if ok:
                relay.logins.append(user)
            return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself

        kwargs = {}
        if security == "starttls":
            kwargs.update(tls_context=ca.server_context(), require_starttls=True)
        elif security == "tls":
            kwargs.update(ssl_context=ca.server_context(), server_hostname="localhost")
        if user:
            # aiosmtpd counts only STARTTLS as TLS: behind TLS from the start, AUTH is offered, not required
            starttls = security == "starttls"
            kwargs.update(authenticator=authenticator, auth_required=starttls, auth_require_tls=starttls)
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


def require_alertmanager() -> str:
    if Path(ALERTMANAGER).exists():
        return ALERTMANAGER
    message = f"{ALERTMANAGER} is not installed here (Debian package prometheus-alertmanager)"
    if os.environ.get("CI"):
        pytest.fail(message + "; .ci/run installs it, so in CI this is a defect", pytrace=False)
    pytest.skip(message + "; .ci/run installs it, so CI runs this test")


class Alertmanager:
    """Debian's Alertmanager on loopback with its own config and storage, no cluster."""

    CONFIG = "route:\n  receiver: sink\n  group_wait: 1h\nreceivers:\n  - name: sink\n"

    def __init__(self, folder: Path):
        self.binary = require_alertmanager()
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def __enter__(self):
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        config = self.folder / "alertmanager.yml"
        config.write_text(self.CONFIG)
        self.log = open(self.folder / "alertmanager.log", "wb")
        self.process = subprocess.Popen(
            [self.binary, f"--config.file={config}", f"--storage.path={self.folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"alertmanager did not start: {(self.folder / 'alertmanager.log').read_text()[-2000:]}")

    def alerts(self, **query) -> list[dict]:
        """GET /api/v2/alerts (active, silenced, inhibited and unprocessed ones)."""
        from urllib.parse import urlencode

        with urllib.request.urlopen(f"{self.url}/api/v2/alerts?{urlencode(query)}", timeout=5) as r:
            return json.loads(r.read())

    def __exit__(self, *exc):
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        self.log.close()

