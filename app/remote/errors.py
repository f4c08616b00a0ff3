"""What can go wrong reaching a server, each with a message an operator can act on."""


class RemoteError(Exception):
    """A failure reported by the agent or the transport. `code` is machine-readable."""

    def __init__(self, message: str, code: str = "failed", detail: dict | None = None):
        super().__init__(message)
        self.code = code
        self.detail = detail or {}


class ConnectFailed(RemoteError):
    def __init__(self, message: str):
        super().__init__(message, "unreachable")


class AuthFailed(RemoteError):
    def __init__(self, message: str):
        super().__init__(message, "auth_failed")


class UnknownHostKey(RemoteError):
    def __init__(self, host: str, key_type: str, fingerprint: str):
        super().__init__(
            f"the host key of {host} is not known: {key_type} {fingerprint}. Check it with the server's "
            f"administrator (ssh-keygen -l -E sha256 -f /etc/ssh/ssh_host_*.pub), then trust it with "
            f"--accept-host-key {fingerprint}", "host_key_unknown")
        self.host, self.key_type, self.fingerprint = host, key_type, fingerprint


class HostKeyChanged(RemoteError):
    def __init__(self, host: str, key_type: str, expected: str, got: str):
        super().__init__(
            f"WARNING: the host key of {host} has CHANGED (known {expected}, now offered {key_type} {got}). "
            f"Someone may be intercepting the connection, or the server was reinstalled. Nothing was sent. "
            f"If the change is expected, run `berth server forget-key SERVER`, then "
            f"`berth server check SERVER --accept-host-key {got}`.",
            "host_key_changed")
        self.host, self.key_type, self.expected, self.fingerprint = host, key_type, expected, got
