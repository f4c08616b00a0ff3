"""The model's stable port: chosen once (from the server's range, or set by the bundle's `[serve]
port` or `berth server set-port`), kept in `models/<name>/endpoint.json` so deploys, rollbacks,
stop/start, a crashed runner and a restarted agent all find the same one; freed when the model's
folder goes. Its listening socket is created once and handed from runner to runner (handoff.py);
the scheduler's watchdog keeps a copy (keeper_file), so a crashed runner's port queues connections
until the restarted runner accepts them, instead of refusing them."""
import errno
import os
import random
import socket
import time

from . import handoff
from .fsutil import read_json, write_json_atomic
from .journal import utc_now
from .layout import AgentError

DEFAULT_RANGE = (18000, 18999)
HOST = "127.0.0.1"
REBIND_S = 1.0  # a runner that just died may hold the socket a moment after it looks dead (its memory
# goes before its files, and /proc/<pid>/cmdline is empty from then on)
BACKLOG = 1024  # one queue for every runner that accepts from it: a switch must not overflow it


def endpoint_file(model):
    return os.path.join(model.path, "endpoint.json")


def settings_file(root):
    return os.path.join(root.path, "serving.json")


def port_range(root):
    """`port_range` in <root>/serving.json ("18000-18999"), else $BERTH_PORT_RANGE (one user's several
    roots on one host kept apart without a file in each), else DEFAULT_RANGE."""
    for text in ((read_json(settings_file(root)) or {}).get("port_range"), os.environ.get("BERTH_PORT_RANGE")):
        try:
            low, high = (int(p) for p in str(text).split("-"))
            if 1024 <= low <= high <= 65535:
                return low, high
        except ValueError:
            pass
    return DEFAULT_RANGE


def stable_port(model):
    """The model's stable port, or None before its first start."""
    port = (read_json(endpoint_file(model)) or {}).get("port")
    return port if isinstance(port, int) else None


def check_port(value):
    if not isinstance(value, int) or isinstance(value, bool) or not 1024 <= value <= 65535:
        raise AgentError("invalid port %r: give a number from 1024 to 65535" % (value,), "usage")
    return value


def assigned(root):
    """{port: model name} of every model under this root."""
    out = {}
    for name in root.model_names():
        port = stable_port(root.model(name))
        if port:
            out[port] = name
    return out


def ensure(root, model, wanted=None, how="bundle"):
    """The model's stable port, chosen now when it has none; `wanted` (the bundle's [serve] port or
    set-port) replaces it, refused when another model has it or another process listens on it. A
    port set with set-port stays until set-port changes it: a bundle's port does not override it."""
    saved = read_json(endpoint_file(model)) or {}
    have = stable_port(model)
    if how == "bundle" and saved.get("chosen") == "set":
        wanted = None
    if wanted is not None and wanted != have:
        check_free(root, model, check_port(wanted))
        _save(model, wanted, how)
        return wanted
    if have:
        return have
    taken = assigned(root)
    low, high = port_range(root)
    ports = list(range(low, high + 1))
    start = random.randrange(len(ports))  # servers shared by several roots: spread their choices
    for port in ports[start:] + ports[:start]:
        if port not in taken and _bindable(port):
            _save(model, port, "range")
            return port
    raise AgentError("no free port left in %d-%d for %s: widen port_range in %s or free one with `berth server "
                     "set-port`" % (low, high, model.name, settings_file(root)), "no_port")


def check_free(root, model, port):
    owner = assigned(root).get(port)
    if owner and owner != model.name:
        raise AgentError("port %d is %s's stable port on this server; choose another" % (port, owner), "port_taken")
    if not _bindable(port):
        raise AgentError("port %d is in use by another process (%s); choose another or stop it"
                         % (port, describe(listening_pid(port))), "port_in_use")


def saved(model):
    return read_json(endpoint_file(model))


def restore(model, data):
    """Put back what saved() read (a change that failed before it served on a new port)."""
    if data is None:
        return
    if data != saved(model):
        write_json_atomic(endpoint_file(model), data)


def _save(model, port, how):
    write_json_atomic(endpoint_file(model), {"port": port, "chosen": how, "at": utc_now()})


def bind(port):
    """A fresh listening socket on the stable port (SO_REUSEADDR: connections of the last runner in
    TIME_WAIT do not block it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(BACKLOG)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise AgentError("the stable port %d is in use by another process (%s): stop it, or give the model "
                             "another port with `berth server set-port`" % (port, describe(listening_pid(port))),
                             "port_in_use")
        raise
    return sock


def _bindable(port):
    try:
        bind(port).close()
        return True
    except AgentError:
        return False


def keeper_file(root_meta):
    """The watchdog's control socket (watchdog.py): `fd NAME` hands over its copy, `drop NAME` closes it."""
    return os.path.join(root_meta, "ports.ctl")


def _keeper_of(model):
    return keeper_file(os.path.join(os.path.dirname(os.path.dirname(model.path)), ".berth"))


def _ask_socket(path, command):
    try:
        reply, fd = handoff.ask(path, command)
    except OSError:
        return None
    if fd is None or reply != "ok":
        return None
    os.set_inheritable(fd, False)
    return socket.socket(fileno=fd)


def release_kept(model):
    """The model stopped (or moved): the watchdog closes its copy, so the port refuses again now."""
    try:
        handoff.ask(_keeper_of(model), "drop " + model.name, timeout=2.0)
    except OSError:
        pass  # no scheduler: nothing is kept


def wake_watchdog(root_meta):
    """A change is done: the watchdog looks now (not at its next idle tick) and watches the new runner."""
    try:
        handoff.ask(keeper_file(root_meta), "look", timeout=1.0)
    except OSError:
        pass  # no scheduler yet: the one the change starts looks at once


def take(model, port, running):
    """The stable port's listening socket for a new runner: the one `running` (a runner record
    serving this port) holds, else the watchdog's copy (the last runner died), else a new one.
    Returns a socket the caller closes once it is passed."""
    if running and running.get("stable_port") == port and running.get("control"):
        sock = _ask_socket(running["control"], "fd")
        if sock is not None:
            return sock
    if os.path.exists(_keeper_of(model)):
        sock = _ask_socket(_keeper_of(model), "fd " + model.name)
        if sock is not None:
            if sock.getsockname()[1] == port:
                return sock
            sock.close()  # the model's old port (set-port moved it): it must refuse from now on
            release_kept(model)
    deadline = time.monotonic() + REBIND_S
    while True:
        try:
            return bind(port)
        except AgentError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def serve(rec):
    """Tell a healthy runner to accept on the stable port."""
    try:
        reply, _ = handoff.ask(rec["control"], "serve")
    except OSError as e:
        reply = str(e)
    if reply != "ok":
        raise AgentError("%s did not start serving on its stable port: %s" % (rec.get("version"), reply), "unhealthy")


def listening_pid(port):
    """The pid listening on 127.0.0.1/0.0.0.0:`port` (from /proc/net/tcp and /proc/*/fd), if visible."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add("socket:[%s]" % parts[9])
    if not inodes:
        return None
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) in inodes:
                    return int(pid)
            except OSError:
                continue
    return -1  # listening, but by a process we may not look into


def describe(pid):
    if pid is None or pid < 0:
        return "a process of another user" if pid else "a process not visible here"
    try:
        with open("/proc/%d/comm" % pid) as f:
            name = f.read().strip()
    except OSError:
        name = "?"
    return "pid %d, %s" % (pid, name)
