"""Deploy a bundle: check → upload what the server lacks → (on the server, under its lock) build,
start, health-check, switch, stop the previous runner, prune. A generator of Progress values;
any failure before the switch leaves the previous release serving."""
import threading
from collections.abc import Iterator
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from app import errors
from app.audit.log import AuditLog
from app.bundle import BundleError, open_bundle
from app.remote.errors import RemoteError
from app.remote.transport import Transport

from .audited import AuditedChange
from .errors import OperationFailed
from . import offline, profile_report
from .plan import plan_deploy
from .progress import Progress, agent_stream, pump
from .release_diff import plan_lines
from .upload import MB, free_space, unique_blobs, upload_blobs


class Deploy:
    """`for p in Deploy(...).run(): ...`; afterwards `.result` holds the agent's answer."""

    def __init__(self, transport: Transport, bundle_path: Path, audit: AuditLog, keep: int = 5,
                 cancel: threading.Event | None = None, reason: str = "", show_plan: bool = False,
                 profile: dict | None = None, admit=None, index=None):
        self.transport = transport
        self.show_plan = show_plan  # the CLI's "what changes" (the console confirms it on a page first)
        self.profile = profile  # just measured (`deploy --profile`); else the one kept for the bundle, if any
        self.bundle_path = Path(bundle_path)
        self.audit = audit
        self.keep = keep
        self.cancel = cancel or threading.Event()
        self.result: dict | None = None
        self.admit = admit  # admit(sha256) raises OperationFailed when this server may not take the bundle
        self.index = index  # offline.IndexPlan: offline wheels or a private index; None: the server's own index
        self.trail = AuditedChange(audit, "deploy", server=transport.name, ssh_user=transport.ssh_user, reason=reason)

    def run(self) -> Iterator[Progress]:
        try:
            yield from self._run()
        except BundleError as e:  # nothing started: the bundle's check failed
            self.audit.record("bundle.check", "failed", detail=f"{self.bundle_path}: {e}",
                              **{k: v for k, v in self.trail.facts.items() if k != "reason"})
            raise OperationFailed(str(e), code="bundle") from None
        except OperationFailed as e:
            raise self.trail.failed(e, "cancelled" if e.code == "cancelled" else "failed") from None
        except (RemoteError, OSError) as e:
            raise self.trail.failed(e) from None
        except BaseException as e:  # Ctrl-C, a closed window: the attempt stays on record
            self.trail.failed(OperationFailed(f"interrupted ({type(e).__name__})"))
            raise

    def _run(self) -> Iterator[Progress]:
        yield Progress("check", f"checking {self.bundle_path}")
        with open_bundle(self.bundle_path) as bundle:
            m = bundle.manifest
            for w in bundle.warnings:
                yield Progress("check", str(w))
            self.trail.begin(model=m.name, version=m.version, sha256=bundle.sha256)
            if self.admit is not None:
                self.admit(bundle.sha256)
            yield Progress("connect", f"asking {self.transport.name} about itself")
            wheels, index_fields = [], {}
            if self.index is not None:
                offline.learn_facts(self.index, self.transport)
                wheels, index_fields = yield from pump(lambda emit: offline.prepare(
                    self.index, self.transport, bundle.folder, m.requirements, emit))
            info = self.transport.hello(hashes=[f.sha256 for f in bundle.files + wheels], model=m.name)
            _check_python(m.python, info["python"], self.transport.name)
            _check_version_free(m, bundle.sha256, info.get("releases") or {}, self.transport.name)
            profile = self.profile or profile_report.stored(bundle.sha256)
            if self.show_plan:
                plan = plan_deploy(self.transport, m)
                lines = [plan.version_text] + plan_lines(plan)
                if profile is not None:
                    fits, warning = profile_report.fit(profile, self.transport.name, info)
                    lines += [fits] + ([f"warning: {warning}"] if warning else [])
                yield Progress("plan", "\n    ".join(lines))
            missing = set(info["missing"])
            if wheels:
                yield Progress("upload", offline.wheel_news(wheels, missing))
            blobs = unique_blobs(bundle.files + wheels, missing)
            total = sum(b.size for b in blobs)
            news = (f"{len(blobs)} of {len(bundle.files)} files to send" if blobs
                    else f"nothing to send: the server has all {len(bundle.files)} files")
            yield Progress("upload", news, 0, total)
            sent = yield from self._upload(info, blobs, info.get("partials") or {})
            request = {"model": m.name, "version": m.version, "sha256": bundle.sha256, "manifest": m.to_dict(),
                       "files": [{"path": f.path, "sha256": f.sha256, "mode": f.mode, "size": f.size} for f in bundle.files],
                       "keep": self.keep, "actor": self._actor(), "event_ids": self.trail.event_ids(),
                       "desktop_head": self.audit.desktop_head(),
                       "reason": self.trail.facts.get("reason", ""), "commit": sent.hashes, "profile": profile,
                       **index_fields, **self.trail.asks()}
            self.result = yield from self._install(request, info, blobs)
        self.trail.ok(self.result)
        yield Progress("done", f"{m.name} {m.version} is current on {self.transport.name}")

    def _install(self, request: dict, info: dict, blobs):
        """The agent's deploy. Files it finds damaged (hash mismatch) are sent again once, from their
        start; the second time the deploy fails, with nothing changed on the server."""
        for attempt in (1, 2):
            try:
                return (yield from agent_stream(self.transport, "deploy", request))
            except RemoteError as e:
                if e.code != "corrupt_blob":
                    raise
                bad = set(e.detail.get("bad") or [])
                needed = sum(b.size for b in blobs if b.sha256 in bad)
                free = free_space(self.transport)
                if free is not None and free < needed + MB:  # pipelined writes lost to a full disk
                    raise OperationFailed(f"no space left on {self.transport.name}: {free / MB:.1f} MB free, "
                                          f"{needed / MB:.1f} MB needed for the files that did not arrive whole; "
                                          "the server was not changed. Free some space there (or remove old "
                                          "releases) and deploy again", code="no_space") from None
                if attempt == 2:
                    raise OperationFailed(f"{len(bad)} file(s) arrived damaged twice (hash mismatch on the server); "
                                          "nothing was changed. Check the server's disk and the network, then "
                                          "deploy again", code="corrupt_blob") from None
                again = [b for b in blobs if b.sha256 in bad]
                yield Progress("upload", f"{len(again)} file(s) arrived damaged; sending them again", 0,
                               sum(b.size for b in again))
                yield from self._upload(info, again, {})

    def _upload(self, info: dict, blobs, partials: dict):
        sent = yield from pump(lambda emit: upload_blobs(self.transport, info["blobs"], blobs, emit, self.cancel,
                                                         partials))
        if self.cancel.is_set():
            raise OperationFailed("deploy cancelled before the server changed", code="cancelled")
        return sent

    def _actor(self) -> dict:
        from app.audit.actor import local_actor

        return dict(local_actor(), ssh_user=self.transport.ssh_user)


def _check_python(spec: str | None, server_python: str, server: str) -> None:
    if not spec:
        return
    try:
        ok = SpecifierSet(spec).contains(server_python, prereleases=True)
    except InvalidSpecifier:
        ok = False
    if not ok:
        raise OperationFailed(f"the bundle needs Python {spec}, but {server} has Python {server_python}; "
                              f"nothing was uploaded", code="python")


def _check_version_free(m, sha256: str, there: dict, server: str) -> None:
    """A version is one content: the agent refuses other content under a version it has, and
    saying so before the upload saves sending the bundle for nothing."""
    existing = there.get(m.version)
    if existing and existing != sha256:
        raise OperationFailed(f"version {m.version} of {m.name} is already on {server} with different content "
                              f"({existing[:12]}…, this bundle {sha256[:12]}…); give the bundle a new version in "
                              f"berth.toml (kept there: {', '.join(there)}); nothing was sent",
                              code=errors.VERSION_CONFLICT)
