"""One operator's Berth: the local database, the server list, the audit log, and connections to
servers. The CLI and the console both start from here."""
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from app import errors
from app.audit.log import AuditLog
from app.deploy.changes import change
from app.deploy.deploy import Deploy
from app.deploy.progress import Progress
from app.errors import BerthError
from app.remote.connect import open_transport
from app.remote.credentials import AskPassphrase
from app.remote.errors import HostKeyChanged, RemoteError, UnknownHostKey
from app.remote.hostkeys import KnownHosts
from app.remote.transport import Transport
from app.store import paths
from app.store.db import open_db
from app.store.activity import ActivityLog
from app.store.servers import LOCAL, ServerConfig, ServerRegistry
from app.store.settings import Settings

SERVER_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
# what may need a reason on a production server: start and stop restore or pause what is deployed
REASONED_ACTIONS = ("deploy", "rollback")



class ReasonRequired(BerthError, ValueError):
    """A change on a production server without the reason Berth is set to require."""

class Workspace:
    def __init__(self, db=None, ask_passphrase: AskPassphrase | None = None):
        """`ask_passphrase`: how this front end asks for an encrypted key's passphrase (the CLI on a
        terminal); None: such a key is used only with a passphrase stored in the keyring."""
        self.db = db if db is not None else open_db()
        self.ask_passphrase = ask_passphrase
        self.servers = ServerRegistry(self.db)
        self.audit = AuditLog(self.db)
        self.settings = Settings(self.db)
        self.activity = ActivityLog(self.db)

    def set_setting(self, key: str, value: str) -> tuple[str, str]:
        old = self.settings.set(key, value)
        new = self.settings.get(key)
        self.audit.record("settings.change", "ok", old=old, new=new, detail=key)
        return old, new

    def reason_required(self, server: str) -> bool:
        return (self.settings.flag("require_reason_production")
                and self.servers.get(server).environment == "production")

    def check_reason(self, server: str, reason: str) -> None:
        """Refused before anything starts, and audited as such."""
        if self.reason_required(server) and not (reason or "").strip():
            message = (f"{server} is a production server: give a reason for this change (--reason TEXT); "
                       "Berth is set to require one (settings: require_reason_production)")
            self.audit.record("permission.denied", "failed", server=server, detail=message)
            raise ReasonRequired(message, errors.REASON_REQUIRED)

    def deploy(self, transport: Transport, bundle_path: Path, reason: str = "", **options) -> Deploy:
        """The deploy job (run it with `.run()`), refused first when the server needs a reason."""
        self._check_change("deploy", transport.name, reason)
        return Deploy(transport, bundle_path, self.audit, reason=reason, **options)

    def change(self, transport: Transport, action: str, model: str, reason: str = "",
               **params) -> Iterator[Progress]:
        """Rollback, start or stop (app.deploy.changes.change), refused first when it needs a reason."""
        self._check_change(action, transport.name, reason)
        return (yield from change(transport, self.audit, action, model, reason=reason, **params))

    def connect_to_change(self, action: str, name: str, reason: str = "") -> Transport:
        """connect(name) to run `action` there, refused before connecting when it needs a reason
        (deploy and change check again, harmlessly): a missing reason is said even when the server
        is unreachable, and nothing is opened for a change that cannot run."""
        self._check_change(action, name, reason)
        return self.connect(name)

    def _check_change(self, action: str, server: str, reason: str) -> None:
        if action in REASONED_ACTIONS:
            self.check_reason(server, reason)

    def connect(self, name: str, accept_fingerprint: str | None = None, shared: bool = False) -> Transport:
        """A connected transport; `shared`: a share of the console's one connection to this server
        (app/remote/shared.py), which the live sample stream uses too. close() when done, either way."""
        server = self.servers.get(name)
        if shared and server.kind != LOCAL:
            from app.remote.shared import CONNECTIONS

            return CONNECTIONS.acquire(server, lambda: self._open(server, accept_fingerprint))
        return self._open(server, accept_fingerprint)

    def _open(self, server: ServerConfig, accept_fingerprint: str | None) -> Transport:
        name = server.name
        try:
            transport = open_transport(server, accept_fingerprint, ask_passphrase=self.ask_passphrase)
        except UnknownHostKey as e:
            self.audit.record("hostkey.refused", "failed", server=name, ssh_user=server.user, detail=str(e))
            raise
        except HostKeyChanged as e:
            self.audit.record("hostkey.changed", "failed", server=name, ssh_user=server.user, detail=str(e))
            raise
        except RemoteError as e:
            self.audit.record("connect", "failed", server=name, ssh_user=server.user, detail=str(e))
            raise
        if getattr(transport, "key_added", False):
            self.audit.record("hostkey.trust", "ok", server=name, ssh_user=server.user, detail=accept_fingerprint or "")
        transport.on_activity = self.activity.record
        transport.on_agent_replaced = lambda why: self.audit.record(
            "agent.replaced", "ok", server=name, ssh_user=server.user,
            detail=f"{why}; a fresh copy was installed")
        return transport

    def server_status(self, transport: Transport, model: str | None = None) -> list[dict]:
        """What runs on the server; its journal is imported on the way when it has news."""
        answer = transport.agent("status", {"model": model} if model else {})
        self.sync_journal(transport, answer.get("journal_head"))
        return [dict(r, server=transport.name) for r in answer["models"]]

    def sync_journal(self, transport: Transport, head: dict | None = None):
        """Import the server journal's events this desktop has not seen (None: nothing new)."""
        from app.audit.sync import JournalSync

        sync = JournalSync(self.db)
        if head is not None and sync.up_to_date(transport.name, head):
            return None
        return sync.pull(transport)

    def test_server(self, server: ServerConfig, accept_fingerprint: str | None = None) -> dict:
        """Connect for real (host key, login, agent upload, hello) without saving anything."""
        try:
            with open_transport(server, accept_fingerprint, ask_passphrase=self.ask_passphrase) as t:
                if getattr(t, "key_added", False):
                    self.audit.record("hostkey.trust", "ok", server=server.name, ssh_user=server.user,
                                      detail=accept_fingerprint or "")
                return t.hello()
        except UnknownHostKey as e:
            self.audit.record("hostkey.refused", "failed", server=server.name, ssh_user=server.user, detail=str(e))
            raise
        except HostKeyChanged as e:
            self.audit.record("hostkey.changed", "failed", server=server.name, ssh_user=server.user, detail=str(e))
            raise

    def add_server(self, server: ServerConfig, accept_fingerprint: str | None = None) -> dict:
        """Check the server for real before saving it; returns its facts."""
        return self.save_server(server, accept_fingerprint)

    def save_server(self, server: ServerConfig, accept_fingerprint: str | None = None,
                    replacing: str | None = None) -> dict:
        """Add a server, or replace the one named `replacing` (edit, maybe renamed)."""
        if not SERVER_NAME_RE.fullmatch(server.name) or server.name == LOCAL:
            raise ValueError(f"invalid server name {server.name!r}: use a-z 0-9 . _ - (not 'local')")
        if server.name != replacing and self.servers.exists(server.name):
            raise ValueError(f"a server named {server.name!r} exists already")
        action = "server.edit" if replacing else "server.add"
        try:
            info = self.test_server(server, accept_fingerprint)
        except RemoteError as e:
            self.audit.record(action, "failed", server=server.name, ssh_user=server.user, detail=str(e))
            raise
        if replacing and replacing != server.name:
            self.servers.remove(replacing)
        self.servers.save(replace(server, root=info["root"]))
        self.audit.record(action, "ok", server=server.name, ssh_user=server.user,
                          detail=f"{server.describe()} root={info['root']}")
        return info

    def remove_server(self, name: str) -> None:
        """Its password goes from the keyring too, and its key's passphrase when no other server
        uses that key: a removed server leaves no secret behind."""
        from app.remote import credentials

        server = self.servers.get(name)
        self.servers.remove(name)
        credentials.delete_secret(credentials.password_account(server.name))
        if server.key_path and not any(s.key_path == server.key_path for s in self.servers.list()):
            credentials.delete_secret(credentials.key_passphrase_account(server.key_path))
        self.audit.record("server.remove", "ok", server=name)

    def forget_host_key(self, name: str, config: ServerConfig | None = None) -> int:
        """Forget the trusted key(s) of server `name`; `config` (a server being added or edited) names
        the address when it is not, or not yet, the saved one."""
        server = config if config is not None else self.servers.get(name)
        n = KnownHosts(paths.known_hosts_path()).forget(server.host, server.port)
        self.audit.record("hostkey.forget", "ok", server=name, ssh_user=server.user,
                          detail=f"{n} key(s) removed for {server.host}:{server.port}")
        return n
