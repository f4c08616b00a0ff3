"""A runner's control socket (a unix socket in the model's run folder): how the agent takes the
stable port's listening socket from the running release (SCM_RIGHTS, the one kernel socket, so its
accept queue is shared and no connection is lost) and tells a healthy new runner to serve on it.

One command per connection, one line each way: `fd` (answered `ok` with the descriptor attached),
`serve`, `unserve` and `stop` (the runner drains and ends as on SIGTERM). Only the runner's own user
may connect (the file is 0600 and the peer's uid is checked) or, in a shared root with a writers group
(its run folder group-writable, setgid), a process of that group: another deployer's agent taking
over the model cannot signal a runner of another user, so it asks it to stop.
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
    group = writers_of(os.path.dirname(path) or ".")
    with _ShortPath(path) as where:
        sock.bind(where)
        os.chmod(where, 0o600 if group is None else 0o660)
    sock.listen(8)
    _writers[sock.fileno()] = group
    return sock


_writers = {}  # listening socket's fd -> the writers group that may also connect (None: its user only)


def writers_of(folder):
    """The group that may change what is in `folder` (setgid and group-writable: a shared root's
    writers, sharedroot.py), else None."""
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_gid if st.st_mode & 0o2020 == 0o2020 else None


def _peer_allowed(conn, group):
    pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    if uid == os.getuid():
        return True
    if group is None:
        return False
    if gid == group:
        return True
    try:  # the peer process's own supplementary groups, as the kernel holds them
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Groups:"):
                    return str(group) in line.split()[1:]
    except OSError:
        pass
    return False


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
        _answer(conn, handlers, _writers.get(sock.fileno()))
    except OSError:
        pass
    finally:
        conn.close()
    return True


def _answer(conn, handlers, group):
    if not _peer_allowed(conn, group):
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


def stop_self():
    """The `stop` command's answer: the runner SIGTERMs itself (what supervise.stop sends; it drains,
    and a runner with workers passes it on to them), and the reply goes out while it drains."""
    import signal

    os.kill(os.getpid(), signal.SIGTERM)
    return "ok"
