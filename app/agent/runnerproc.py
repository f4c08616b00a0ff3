"""Telling a runner from its files and /proc, with nothing heavier than `os`: used by supervise.py
and by the sampler, which must stay small (it re-execs importing only what it needs)."""
import os


def read_port(model, version):
    """The runner's port once it is ready (its port file is written after the socket is bound)."""
    try:
        with open(model.port_file(version)) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def is_runner_process(pid, release):
    """Is `pid` running (not a zombie or dead) with `release` in its command line, i.e. still our
    runner and not an unrelated process that reused the pid? Needs /proc."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X", b"x"):
                return False
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return bool(release) and release.encode() in f.read()
    except (OSError, IndexError):
        return False


def pid_alive(pid):
    """A process with this pid exists (it may belong to someone else: PermissionError still says yes)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def has_proc():
    return os.path.isdir("/proc/self")


def unrecorded_runners(model):
    """{pid: version} of this user's runners of `model` that no record names: an agent killed between
    starting a runner and writing its record leaves one, which no stop would find. A runner is told
    by its command line: `-m ….runner --release <model>/releases/<v> --port-file <model>/run/<v>.port`
    (a replay's runner has a port file of its own and is not one). Needs /proc."""
    if not has_proc():
        return {}
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat("/proc/" + name).st_uid != os.getuid():
                continue
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = [a.decode("utf-8", "surrogateescape") for a in f.read().split(b"\0")]
        except OSError:
            continue
        version = _runner_version(model, argv)
        if version is not None and not os.path.exists(os.path.join(model.run, version + ".runner.json")):
            found[int(name)] = version
    return found


def _runner_version(model, argv):
    if not any(a.endswith(".runner") for a in argv):
        return None
    try:
        release = argv[argv.index("--release") + 1]
        port_file = argv[argv.index("--port-file") + 1]
    except (ValueError, IndexError):
        return None
    version = os.path.basename(release)
    if release != os.path.join(model.releases, version) or port_file != os.path.join(model.run, version + ".port"):
        return None
    return version
