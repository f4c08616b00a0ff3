"""What can go wrong reaching a server, each with a message an operator can act on."""
from app import errors
from app.errors import BerthError


class RemoteError(BerthError):
    """A failure reported by the agent or the transport (the agent's code and extra fields kept)."""

    def __init__(self, message: str, code: str = errors.FAILED, detail: dict | None = None):
        super().__init__(message, code, detail)


def agent_error(event: dict) -> RemoteError:
    """The RemoteError an agent's error line says (its message and code; its other fields kept)."""
    extra = {k: v for k, v in event.items() if k not in ("event", "message", "code", "id")}
    return RemoteError(event.get("message", "the agent failed"), event.get("code", "failed"), extra)


class ConnectFailed(RemoteError):
    def __init__(self, message: str):
        super().__init__(message, errors.UNREACHABLE)


class AuthFailed(RemoteError):
    """`detail["summary"]` is the message without the console's advice ("the server's settings"),
    so that the command line can give its own (`berth server add` flags, `berth server password`)."""

    def __init__(self, message: str, summary: str = "", password_missing: bool = False):
        super().__init__(message, errors.AUTH_FAILED,
                         {"summary": summary or message, "password_missing": password_missing})


class UnknownHostKey(RemoteError):
    def __init__(self, host: str, key_type: str, fingerprint: str, cert_authority: str = ""):
        ca = (f" ({cert_authority} names a @cert-authority for it: Berth does not support host certificates, "
              f"so it checks the server's own key)" if cert_authority else "")
        super().__init__(
            f"the host key of {host} is not known: {key_type} {fingerprint}{ca}. Check it with the server's "
            f"administrator (ssh-keygen -l -E sha256 -f /etc/ssh/ssh_host_*.pub), then trust it with "
            f"--accept-host-key {fingerprint}", errors.HOST_KEY_UNKNOWN)
        self.host, self.key_type, self.fingerprint = host, key_type, fingerprint


class HostKeyChanged(RemoteError):
    def __init__(self, host: str, key_type: str, expected: str, got: str, source: str = ""):
        forget = (f"remove the old key from {source} (`ssh-keygen -R '{host}' -f {source}`)" if source
                  else "run `berth server forget-key SERVER`")
        super().__init__(
            f"WARNING: the host key of {host} has CHANGED (known {expected}, now offered {key_type} {got}). "
            f"Someone may be intercepting the connection, or the server was reinstalled. Nothing was sent. "
            f"If the change is expected, {forget}, then "
            f"`berth server check SERVER --accept-host-key {got}`.",
            errors.HOST_KEY_CHANGED)
        self.host, self.key_type, self.expected, self.fingerprint = host, key_type, expected, got


class HostKeyRevoked(RemoteError):
    """A key listed on an `@revoked` line: refused always, whoever trusted it and whatever
    --accept-host-key says. Not a HostKeyChanged: no front end may offer to trust it."""

    def __init__(self, host: str, key_type: str, fingerprint: str, where: str):
        super().__init__(
            f"the host key of {host} ({key_type} {fingerprint}) is REVOKED ({where}: @revoked). Berth never "
            f"connects with a revoked key, and nothing was sent. Ask the server's administrator for its new key.",
            errors.HOST_KEY_REVOKED, {"revoked_in": where})
        self.host, self.key_type, self.fingerprint, self.where = host, key_type, fingerprint, where


class JumpHostKeyRefused(RemoteError):
    """A jump host's key is unknown or changed. Not an UnknownHostKey: the console's "trust this
    key" question is about the server itself, so a jump host's key is trusted deliberately."""

    def __init__(self, problem: RemoteError, target: str):
        self.host, self.key_type, self.fingerprint = problem.host, problem.key_type, problem.fingerprint
        self.changed = isinstance(problem, HostKeyChanged)
        if self.changed:
            what = (f"has CHANGED (known {problem.expected}, now offered {problem.key_type} {problem.fingerprint}). "
                    f"Someone may be intercepting the connection. Nothing was sent past it. If the change is "
                    f"expected, remove the old key (`ssh-keygen -R` for ~/.ssh/known_hosts, or delete its line "
                    f"from Berth's known_hosts), then trust the new one")
        else:
            what = (f"is not known: {problem.key_type} {problem.fingerprint}. Nothing was sent past it. Check it "
                    f"with the jump host's administrator, then trust it")
        super().__init__(
            f"the host key of jump host {problem.host} (on the way to {target}) {what} with "
            f"`--accept-jump-key {problem.fingerprint}` on `berth server add` or `berth server check`, "
            f"or by adding it to ~/.ssh/known_hosts.",
            errors.JUMP_HOST_KEY_CHANGED if self.changed else errors.JUMP_HOST_KEY_UNKNOWN)


class SSHConfigError(BerthError, ValueError):
    """The config cannot be used for this alias (unknown alias, bad ProxyJump, ProxyCommand...)."""

    default_code = errors.CONFIG
