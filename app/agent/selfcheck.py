"""The session's own check of the agent's files before each request. The bootstrap checks them once,
when the session starts; a session lives as long as the desktop's connection (hours), and the runners
it starts import the agent's files from disk. So each request first sees that the files are still
the ones the bootstrap passed, with the same rules (owned by us, writable by nobody else, no
bytecode, nothing else beside them); otherwise it is refused as `agent_modified` and Berth replaces
the agent, as it does for a one-shot command."""
import hashlib
import os
import stat


def _unsafe(path, kind):
    st = os.lstat(path)
    return not kind(st.st_mode) or st.st_mode & 0o022 or st.st_uid != os.getuid()


def state(package_dir):
    """(sha256 of the sources as the bootstrap hashes them, the paths that break its rules)."""
    base = os.path.dirname(package_dir)
    digest, bad = hashlib.sha256(), []
    try:
        bad.extend(p for p in (base, package_dir) if _unsafe(p, stat.S_ISDIR))
        bad.extend(os.path.join(base, n) for n in os.listdir(base) if n not in ("agent.py", "berth_agent"))
        for name in sorted(os.listdir(package_dir)):
            path = os.path.join(package_dir, name)
            if name == "__pycache__":
                if _unsafe(path, stat.S_ISDIR):
                    bad.append(path)
                bad.extend(os.path.join(path, c) for c in os.listdir(path))
            elif name.endswith(".py") and not _unsafe(path, stat.S_ISREG):
                with open(path, "rb") as f:
                    digest.update(name.encode() + b"\0" + f.read())
            else:
                bad.append(path)
    except OSError as e:
        bad.append(str(e))
    return digest.hexdigest(), bad


class SelfCheck:
    """What the files were when the session started (the bootstrap had just passed them)."""

    def __init__(self, package_dir):
        self.package_dir = package_dir
        self.digest, self.bad_at_start = state(package_dir)

    def problem(self):
        """None, or the error line's fields when the files changed since the session started."""
        digest, bad = state(self.package_dir)
        if not bad and digest == self.digest and not self.bad_at_start:
            return None
        d = os.path.dirname(self.package_dir)
        why = ("writable by others, or not its files: %s" % ", ".join(bad[:3]) if bad
               else "its content changed during this connection")
        return {"code": "agent_modified", "paths": bad[:20],
                "message": "the Berth agent at %s was modified (%s)" % (d, why)}
