"""The built-in `local` server: the same agent, run by subprocess on this computer."""
import http.client
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from app.agent.containerengine import PASSED as ENGINE_PASSED
from app.agent.runnerenv import pip_environment

from .transport import Transport, http_exchange

AGENT_PASSED = (*ENGINE_PASSED, "BERTH_PORT_RANGE")  # beside pip's own allow-list: see _start


def local_python() -> str:
    """The interpreter the local agent runs with: this one from source; in the packaged app (PyInstaller,
    sys.frozen) sys.executable is Berth itself, so the computer's python3 serves `local` as it would
    serve a server (docs/packaging.md)."""
    if not getattr(sys, "frozen", False):
        return sys.executable
    found = shutil.which("python3")
    if not found:
        from app.errors import BerthError

        raise BerthError("the `local` server needs python3 on this computer (the packaged Berth runs its "
                         "agent with the computer's Python, as a server does): install python3 3.8 or newer")
    return found


class LocalTransport(Transport):
    name = "local"
    # one process per command here: a local Transport has no connection whose end would end the
    # session's process, and callers make and drop them freely (docs/decisions.md, Agent session)
    use_session = False

    def __init__(self, root: str, python: str | None = None):
        super().__init__(root)
        self.python = python or local_python()

    def _start(self, argv):
        """The process, with its stderr collected on a thread; wait() -> (exit code, stderr)."""
        argv = [self.python if argv[0] == "python3" else argv[0], *argv[1:]]
        # what the agent and its pip need of the operator's environment (the agent's own allow-list
        # for pip), where the container engine is (DOCKER_HOST, podman's CONTAINERS_CONF) and the
        # stable ports' range (BERTH_PORT_RANGE, endpoint.port_range): not tokens, cloud keys or SSH_AUTH_SOCK
        env = dict(pip_environment(os.environ), **{k: v for k, v in os.environ.items() if k in AGENT_PASSED})
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env,
                                cwd=self.abs_root if os.path.isdir(self.abs_root) else None)
        errors: list[bytes] = []
        reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)
        reader.start()

        def wait():
            code = proc.wait()
            reader.join()
            proc.stdout.close()
            proc.stderr.close()
            return code, b"".join(errors).decode("utf-8", "replace")

        return proc, reader, wait

    def _exec(self, argv, stdin):
        proc, reader, wait = self._start(argv)
        proc.stdin.write(stdin)
        proc.stdin.close()

        def abort():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            reader.join(5)
            proc.stdout.close()
            proc.stderr.close()

        return proc.stdout, wait, abort

    def _exec_interactive(self, argv):
        """The agent session on this computer (used when `use_session` is set: see use_session)."""
        from .agent_session import Interactive

        proc, _reader, wait = self._start(argv)

        def write(data):
            proc.stdin.write(data)
            proc.stdin.flush()

        def abort():
            if proc.poll() is None:
                proc.kill()

        return Interactive(proc.stdout, write, proc.stdin.close, wait, abort)

    def resolve(self, path):
        return os.path.abspath(os.path.expanduser(path))

    def exists(self, path):
        return os.path.exists(path)

    def mkdirs(self, path):
        os.makedirs(path, exist_ok=True)

    def put(self, local: Path, remote: str, progress=None):
        total = os.path.getsize(local)
        done = 0
        with open(local, "rb") as src, open(remote, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)

    def open_write(self, remote, offset):
        f = open(remote, "r+b" if offset else "wb")
        f.seek(offset)
        f.truncate()
        return f

    def write_bytes(self, remote, data):
        Path(remote).write_bytes(data)

    def rename(self, src, dst):
        os.rename(src, dst)

    def chmod(self, path, mode):
        os.chmod(path, mode)

    def remove_tree(self, path):
        shutil.rmtree(path, ignore_errors=True)

    def remove_file(self, path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def http(self, port, method, path, body=None, timeout=30.0):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        return http_exchange(conn, method, path, body)
