"""Which container engine this server has (docker or podman), whether the SSH user may use it, and
the one way the agent calls it: an argv list, never a shell. The engine is the server setting's
binary (`<root>/containers.json` "engine"), else `docker`, else `podman` on PATH; DOCKER_HOST and
CONTAINER_HOST / CONTAINERS_CONF are passed on as the agent has them. Stdlib only."""
import json
import os
import re
import shutil
import subprocess

from .fsutil import read_json, write_json_atomic
from .layout import AgentError

SETTINGS = "containers.json"
ENGINES = ("docker", "podman")
# what the engine's client needs of the agent's environment (its daemon socket, podman's config)
PASSED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "TMPDIR", "XDG_RUNTIME_DIR", "DOCKER_HOST", "DOCKER_CONFIG",
          "DOCKER_CONTEXT", "CONTAINER_HOST", "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF")
# an image reference: [registry[:port]/]path[:tag]; lowercase path parts, no shell metacharacters
IMAGE_RE = re.compile(r"(?:[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]{1,5})?/)?"
                      r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
                      r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?")
MEMORY_RE = re.compile(r"[1-9][0-9]{0,9}[kmg]?")
IMAGE_HINT = "a name such as python:3.11-slim or registry.example.com:5000/team/python:3.11"


def check_image(ref, what="image"):
    """`ref` when it is a plain image reference; otherwise refused before any engine sees it."""
    if not isinstance(ref, str) or len(ref) > 255 or not IMAGE_RE.fullmatch(ref):
        raise AgentError("%s %r is not a valid image name (%s; no spaces or shell characters)"
                         % (what, ref if isinstance(ref, str) else type(ref).__name__, IMAGE_HINT), "bad_image")
    return ref


def image_tag(model, version):
    """berth/<model>:<version>; a version's '+' is not allowed in a tag, so it becomes '_'."""
    return check_image("berth/%s:%s" % (model, version.replace("+", "_")), "tag")


def environment():
    return {k: v for k, v in os.environ.items() if k in PASSED}


def settings(root):
    s = read_json(os.path.join(root.path, SETTINGS))
    return s if isinstance(s, dict) else {}


def container_set(ctx, req):
    """`container_set`: the server's engine binary, base image, memory and CPU limits, build network."""
    root = ctx.root.ensure()
    current = settings(root)
    for key in ("engine", "base_image", "memory", "cpus", "build_network"):
        if key not in req:
            continue
        value = req[key]
        if value in (None, ""):
            current.pop(key, None)
            continue
        if key == "engine" and (not isinstance(value, str) or not os.path.isabs(value)):
            raise AgentError("the engine must be an absolute path to docker or podman, not %r" % (value,), "usage")
        if key == "base_image":
            check_image(value, "base image")
        if key == "memory":
            check_memory(value)
        if key == "cpus":
            check_cpus(value)
        if key == "build_network" and value not in ("default", "none", "host"):
            raise AgentError("build_network is default, none or host, not %r" % (value,), "usage")
        current[key] = value
    write_json_atomic(os.path.join(root.path, SETTINGS), current)
    return {"settings": current}


def check_memory(value):
    if not isinstance(value, str) or not MEMORY_RE.fullmatch(value.lower()):
        raise AgentError("memory %r is not a size such as 512m or 2g" % (value,), "usage")
    return value.lower()


def check_cpus(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1024:
        raise AgentError("cpus %r is not a number of CPUs above 0, e.g. 1.5" % (value,), "usage")
    return float(value)


def find(root):
    """The engine's path and kind ("docker" / "podman"), or (None, None)."""
    configured = settings(root).get("engine")
    if configured:
        kind = "podman" if "podman" in os.path.basename(configured) else "docker"
        return (configured, kind) if os.access(configured, os.X_OK) else (None, None)
    for kind in ENGINES:
        path = shutil.which(kind)
        if path:
            return path, kind
    return None, None


def detect(root):
    """What `berth server check` shows: the engine, its version, and whether this user may use it."""
    path, kind = find(root)
    if path is None:
        configured = settings(root).get("engine")
        return {"engine": None, "usable": False,
                "detail": ("the configured engine %s is not an executable file" % configured) if configured
                else "neither docker nor podman is on PATH"}
    return probe(path, kind)


def probe(path, kind):
    """One engine binary: its version, and whether this user may use it (its daemon, its storage)."""
    fmt = "{{.Server.Version}}" if kind == "docker" else "{{.Version}}"
    try:
        p = subprocess.run([path, "version", "--format", fmt], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=environment(), timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"engine": kind, "path": path, "usable": False, "detail": "%s did not answer: %s" % (kind, e)}
    if p.returncode != 0:
        why = (p.stderr or p.stdout).decode("utf-8", "replace").strip().splitlines()
        return {"engine": kind, "path": path, "usable": False,
                "detail": "this user may not use %s: %s" % (kind, why[-1] if why else "exit %d" % p.returncode)}
    out = {"engine": kind, "path": path, "usable": True, "version": p.stdout.decode().strip(),
           "detail": "%s %s usable" % (kind, p.stdout.decode().strip())}
    if kind == "podman":
        out["rootless"] = os.geteuid() != 0
    return out


def detect_all(root, chosen):
    """Every engine this server has (the console lists them all): the chosen one, then each other
    one on PATH."""
    found = [chosen] if chosen.get("path") else []
    for kind in ENGINES:
        path = shutil.which(kind)
        if path and all(os.path.realpath(path) != os.path.realpath(f["path"]) for f in found):
            found.append(probe(path, kind))
    return found


def container_check(ctx, req):
    """`container_check`: detection for `berth server check` (the engine releases use) and every engine
    found (`engines`, the console's list)."""
    chosen = detect(ctx.root.ensure())
    return dict(chosen, settings=settings(ctx.root), engines=detect_all(ctx.root, chosen))


COMMANDS = {"container_check": container_check, "container_set": container_set}


def require(root):
    found = detect(root)
    if not found["usable"]:
        raise AgentError("this release runs in a container, but %s; install docker or podman, or set the "
                         "engine with `berth server set-container`" % found["detail"], "no_engine")
    return found["path"]


def run(engine, args, timeout=120, input_bytes=None):
    """(exit code, stdout text, stderr text) of `engine args...`; never raises for a failed command."""
    try:
        p = subprocess.run([engine] + list(args), input=input_bytes, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=environment(), timeout=timeout,
                           stdin=None if input_bytes is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return 124, "", "%s %s timed out after %ss" % (os.path.basename(engine), args[0], timeout)
    except OSError as e:
        return 127, "", str(e)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def inspect(engine, name, fmt="{{json .State}}"):
    code, out, _err = run(engine, ["inspect", "--format", fmt, name], timeout=30)
    if code != 0:
        return None
    try:
        return json.loads(out)
    except ValueError:
        return out.strip()
