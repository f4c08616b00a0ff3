"""A runner's control socket (a unix socket in the model's run folder): how the agent takes the
stable port's listening socket from the running release (SCM_RIGHTS, the one kernel socket, so its
accept queue is shared and no connection is lost) and tells a healthy new runner to serve on it.

One command per connection, one line each way: `fd` (answered `ok` with the descriptor attached)
and `serve`. Only the runner's own user may connect (the file is 0600 and the peer's uid is checked).
Python 3.8 has no socket.send_fds: sendmsg/recvmsg carry the descriptor."""
import array
import os
import socket
import struct
import threading

MAX_PATH = 100  # sun_path holds 108 bytes; a longer path is reached through /proc/self/fd/<dir>


class _ShortPath:
    """`path`, or /proc/self/fd/<dir fd>/<name> when it is too long for a unix socket address."""

    def __init__(self, path):
        self.path, self.dfd = path, None

    def __enter__(self):
        if len(os.fsencode(self.path)) <= MAX_PATH:
            return self.path
        self.dfd = os.open(os.path.dirname(self.path) or ".", os.O_RDONLY)
        return "/proc/self/fd/%d/%s" % (self.dfd, os.path.basename(self.path))

    def __exit__(self, *exc):
        if self.dfd is not None:
            os.close(self.dfd)


def listen(path, handlers):
    """The runner's side: serve `handlers` (command -> fn(conn) returning the reply, or a tuple
    (reply, fd) to attach a descriptor) on a thread; returns the listening socket."""
    sock = bind(path)
    threading.Thread(target=_serve, args=(sock, handlers), name="berth-runner-control", daemon=True).start()
    return sock


def bind(path):
    """The control socket, listening, answered by nobody yet (runnerworkers.py answers it on its own
    loop with answer_one: a process that forks keeps no thread)."""
    try:
        os.unlink(path)
    except OSError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with _ShortPath(path) as where:
        sock.bind(where)
        os.chmod(where, 0o600)
    sock.listen(8)
    return sock


def _serve(sock, handlers):
    while answer_one(sock, handlers):
        pass


def answer_one(sock, handlers):
    """Accept one command on `sock` and answer it; False once the socket is closed."""
    try:
        conn, _ = sock.accept()
    except OSError:
        return False
    try:
        conn.settimeout(5.0)
        _answer(conn, handlers)
    except OSError:
        pass
    finally:
        conn.close()
    return True


def _answer(conn, handlers):
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    if struct.unpack("3i", creds)[1] != os.getuid():
        return
    command = conn.recv(128).strip().decode("ascii", "replace")
    handler = handlers.get(command)
    reply = handler() if handler else "error unknown command"
    fd = None
    if isinstance(reply, tuple):
        reply, fd = reply
    data = (reply + "\n").encode()
    if fd is None:
        conn.sendall(data)
    else:
        conn.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])


def ask(path, command, timeout=5.0):
    """The agent's side: (reply line, received fd or None). OSError when the runner does not answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        with _ShortPath(path) as where:
            sock.connect(where)
        sock.sendall(command.encode() + b"\n")
        fds = array.array("i")
        msg, ancdata, _flags, _addr = sock.recvmsg(256, socket.CMSG_SPACE(fds.itemsize))
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
        return msg.decode("ascii", "replace").strip(), (fds[0] if fds else None)
    finally:
        sock.close()
