"""One operator's Berth: the local database, the server list, the audit log, and connections to
servers. The CLI and the console both start from here. What only a change needs (the deploy and
change use cases, the bundle checks) is imported when one runs: `berth status` loads none of it."""
from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from app import errors
from app.anchoring import anchor_on_first_use, attach_anchor
from app.audit.log import AuditLog
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

if TYPE_CHECKING:
    from app.deploy.deploy import Deploy
    from app.deploy.progress import Progress

SERVER_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
# what may need a reason on a production server: start and stop restore or pause what is deployed;
# a job change alters what runs unattended and writes to a results database, so it counts as a deploy
# and so does an alert change: what tells the team that something went wrong
REASONED_ACTIONS = ("deploy", "rollback", "port.set", "port_range.set", "job.add", "job.edit", "job.pause", "job.resume", "job.remove",
                    "job.run", "alert.add", "alert.silence", "alert.remove")


class ReasonRequired(BerthError, ValueError):
    """A change on a production server without the reason Berth is set to require."""


class StatusRows(list):
    """A server's status rows, and its alerts as the agent counts them: a server without models has
    no row to carry them. `alerts_firing_key` changes whenever what fires changes (None: an old agent)."""

    alerts_firing = 0
    alerts_firing_key: str | None = None


class Workspace:
    def __init__(self, db=None, ask_passphrase: AskPassphrase | None = None, anchor_later: bool = False):
        """`ask_passphrase`: how this front end asks for an encrypted key's passphrase (the CLI on a
        terminal); None: such a key is used only with a passphrase stored in the keyring.
        `anchor_later`: the audit anchor is attached when first used (before the first event is
        written: app/anchoring.py's LaterAnchor), not now; the CLI's, whose process lives seconds."""
        self.db = db if db is not None else open_db()
        self.anchor_later = anchor_later
        self.db.audit_anchor = self.anchor = (anchor_on_first_use if anchor_later else attach_anchor)(self.db)
        self.ask_passphrase = ask_passphrase
        self.servers = ServerRegistry(self.db)
        self.audit = AuditLog(self.db)
        self.settings = Settings(self.db)
        self.activity = ActivityLog(self.db)

    def close(self) -> None:
        """Its anchor, the activity log's connection and the database (in the thread that made them)."""
        if self.anchor is not None:
            self.anchor.close()
        self.activity.close()
        self.db.close()

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
        from app.deploy.deploy import Deploy

        self._check_change("deploy", transport.name, reason)
        options.setdefault("admit", lambda sha: self.check_staging_first(transport.name, sha))
        if "index" not in options:  # offline wheels or a private index (`berth server set NAME --index`)
            from app.deploy.offline import plan_for
            options["index"] = plan_for(self.db, self.settings, transport.name)
        job = Deploy(transport, bundle_path, self.audit, reason=reason, **options)
        job.trail.approval = self.approval_fields(transport.name)
        return job

    def approval_fields(self, server: str) -> dict:
        """What a change asks of four eyes: with four_eyes_production, this desktop's production changes wait
        for a second releaser even where the server's policy does not hold them (it adds, never removes)."""
        asks = self.settings.flag("four_eyes_production") and self.servers.get(server).environment == "production"
        return dict({"four_eyes": True} if asks else {}, expires_s=float(self.settings.get("approval_expiry_hours")) * 3600)

    def check_staging_first(self, server: str, sha256: str) -> None:
        """With require_staging_first, a production server takes only a bundle that has run on a
        staging server (this desktop's audit log says where each has run: app/store/bundle_runs.py)."""
        if not (self.settings.flag("require_staging_first") and self.servers.get(server).environment == "production"):
            return
        from app.deploy.errors import OperationFailed
        from app.store.bundle_runs import bundle_runs

        runs = bundle_runs(self.db, self.servers, sha256)
        if any(r["environment"] == "staging" for r in runs):
            return
        where = ", ".join(f"{r['server']} ({r['environment'] or 'removed'})" for r in runs) or "no server yet"
        raise OperationFailed(f"{server} is a production server and takes only bundles that have run on a staging "
                              f"server first (settings: require_staging_first); bundle {sha256[:12]} has run on "
                              f"{where}: deploy it to a staging server first", code=errors.STAGING_REQUIRED)

    def change(self, transport: Transport, action: str, model: str, reason: str = "",
               **params) -> Iterator[Progress]:
        """Rollback, start or stop (app.deploy.changes.change), refused first when it needs a reason."""
        from app.deploy.changes import change

        self._check_change(action, transport.name, reason)
        return (yield from change(transport, self.audit, action, model, reason=reason,
                                  approval=self.approval_fields(transport.name), **params))

    def job_change(self, transport: Transport, action: str, name: str, model: str, request: dict | None = None,
                   reason: str = "") -> dict:
        """A job change (app.deploy.jobs.change: add, edit, pause, resume, remove, run), refused first when it
        needs a reason."""
        from app.deploy import jobs

        self._check_change(f"job.{action}", transport.name, reason)
        return jobs.change(transport, self.audit, action, name, model, request, reason=reason)

    def alert_change(self, transport: Transport, action: str, name: str, model: str | None,
                     request: dict | None = None, reason: str = "") -> dict:
        """An alert change (app.deploy.alerts.change: add, silence, remove), refused first when it needs
        a reason."""
        from app.deploy import alerts

        self._check_change(f"alert.{action}", transport.name, reason)
        return alerts.change(transport, self.audit, action, name, model, request, reason=reason)

    def connect_to_change(self, action: str, name: str, reason: str = "") -> Transport:
        """connect(name) to run `action` there, refused before connecting when it needs a reason
        (deploy and change check again, harmlessly): a missing reason is said even when the server
        is unreachable, and nothing is opened for a change that cannot run. Held between CLI calls
        (remote/held.py) like a status: a deploy logs in no more than the status before it."""
        self._check_change(action, name, reason)
        return self.connect(name, held=True)

    def _check_change(self, action: str, server: str, reason: str) -> None:
        if action in REASONED_ACTIONS:
            self.check_reason(server, reason)

    def connect(self, name: str, accept_fingerprint: str | None = None, shared: bool = False,
                held: bool = False) -> Transport:
        """A connected transport (close() it when done); `shared`: a share of the console's one connection, the
        sample stream's too (app/remote/shared.py); `held`: the keeper's, held between CLI calls (remote/held.py)."""
        server = self.servers.get(name)
        if held and accept_fingerprint is None and server.kind != LOCAL:
            from app.remote.held import open_held

            transport = open_held(server, lambda: self._open(server, None), self.settings.get("ssh_persist"),
                                  lambda e: self.audit.record("connect", "failed", server=name, ssh_user=server.user,
                                                              detail=str(e)))
            if transport is not None:
                self._watch(transport, server)
                return transport
        if shared and server.kind != LOCAL:
            from app.remote.shared import CONNECTIONS

            handle = CONNECTIONS.acquire(server, lambda: self._open(server, accept_fingerprint))
            if handle.on_activity is None:  # opened first by the sample stream, which logs nowhere
                self._watch(handle, server)
            return handle
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
        transport.name = name  # a local-kind server with its own root (tests, benches) is itself, not `local`
        self._watch(transport, server)
        return transport

    def _watch(self, transport: Transport, server: ServerConfig) -> None:
        """Its commands go to the Remote activity log and a replaced agent to the audit log, whoever
        opened the connection."""
        transport.on_activity = self.activity.record  # thread-safe: its own connection under a lock
        home = threading.get_ident()
        file = next((r[2] for r in self.db.conn.execute("pragma database_list") if r[1] == "main"), "")

        def replaced(why: str) -> None:
            fields = dict(server=server.name, ssh_user=server.user, detail=f"{why}; a fresh copy was installed")
            if threading.get_ident() == home:
                self.audit.record("agent.replaced", "ok", **fields)
                return
            # another thread (the sample stream of a shared connection): SQLite objects stay in their
            # thread, so the event goes through a workspace of this thread's own on the same file
            other = Workspace(open_db(Path(file))) if file else self
            try:
                other.audit.record("agent.replaced", "ok", **fields)
            finally:
                if other is not self:
                    other.close()

        transport.on_agent_replaced = replaced

    def server_status(self, transport: Transport, model: str | None = None, with_jobs: bool = False) -> list[dict]:
        """What runs on the server; its journal is imported on the way when it has news. `with_jobs`:
        each row's `jobs` lists the model's jobs that are failing or late ({name, state})."""
        answer = transport.agent("status", {"model": model} if model else {})
        self.sync_journal(transport, answer.get("journal_head"))
        rows = StatusRows(dict(r, server=transport.name, alerts_firing=answer.get("alerts_firing") or 0)
                          for r in answer["models"])
        rows.alerts_firing, rows.alerts_firing_key = answer.get("alerts_firing") or 0, answer.get("alerts_firing_key")
        if with_jobs:
            flagged = [j for j in answer.get("jobs") or [] if j.get("failing") or j.get("late")]
            for r in rows:
                r["jobs"] = [{"name": j["name"], "state": "failing" if j.get("failing") else "late"}
                             for j in flagged if j.get("model") == r["model"]]
        return rows

    def sync_journal(self, transport: Transport, head: dict | None = None, full: bool = False):
        """Import the server journal's events this desktop has not seen (None: nothing new). A refresh
        compares only what it imports with the local log; `full` (`berth audit sync`) reads the whole
        journal and compares all of it, so a local history rewritten after an import is noticed too."""
        from app.audit.sync import JournalSync, check_journal, read_journal

        sync = JournalSync(self.db, self.anchor)
        if head is not None and sync.up_to_date(transport.name, head):
            return None
        result = sync.pull(transport)
        if full and not result.problem:
            check = check_journal(self.db.conn, transport.name, read_journal(transport), sync.desktop,
                                  chain=False)
            if not check.ok:
                result.problem = check.problems[0]
                sync.report(transport.name, result.problem)
        return result

    def verify_audit(self, servers: bool = False, progress=None):
        """The chain, the anchor beside the database, and with `servers` every known server's journal
        (anchor.AuditVerdict); a server that cannot be read is a failure that says why."""
        from app.audit.anchor import AnchorVerdict, AuditVerdict
        from app.audit.chain import verify
        from app.audit.sync import JournalCheck, check_journal, read_journal

        chain = verify(self.db.conn, progress=progress)
        anchor = self.anchor.check(self.db.conn) if self.anchor is not None else \
            AnchorVerdict(True, "anchor: none (a database in memory)")
        journals = []
        for server in self.servers.list() if servers else []:
            try:
                with self.connect(server.name) as t:
                    events = read_journal(t)
            except (BerthError, OSError) as e:
                journals.append(JournalCheck(server.name, [f"cannot read its journal: {errors.one_line(e)}"]))
                continue
            journals.append(check_journal(self.db.conn, server.name, events, getattr(self.anchor, "desktop", "")))
        return AuditVerdict(chain, anchor, journals)

    def check_export(self, check) -> None:
        """exported.ExportCheck against every known server's journal (a server unreachable fails it)."""
        from app.audit.sync import read_journal

        for server in self.servers.list():
            try:
                with self.connect(server.name) as t:
                    check.against_journal(server.name, read_journal(t))
            except (BerthError, OSError) as e:
                check.problems.append(f"{server.name}: cannot read its journal: {errors.one_line(e)}")
                check.ok = False

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
        credentials.delete_secret(credentials.smtp_password_account(server.name))
        credentials.delete_secret(credentials.index_password_account(server.name))  # a private index's
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

