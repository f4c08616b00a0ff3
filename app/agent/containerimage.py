"""A container release's image, built on the server from its release folder: the base image (the
bundle's `[serve] image`, else the server's `base_image` setting), the bundle's files, its
requirements installed at build time (from the server's index, or on an offline server from the
wheels the desktop uploaded: copied into the build and installed with --no-index --find-links),
and the Berth runner (stdlib) as the entry point. Tagged
berth/<model>:<version> and labelled with the bundle's sha256, its metadata and who deployed it.
The engine is called with an argv list; every name is checked first (containerengine.check_image)."""
import json
import os
import shutil
import subprocess
import time

from . import blobs
from . import containerengine as engines
from .layout import AgentError

PORT_INSIDE = 8000  # the runner's port in the container's own network namespace
BUILD_TIMEOUT_S = 1800
LOG_TAIL = 40
AGENT_DIR = os.path.dirname(os.path.abspath(__file__))
WHEELS_INSIDE = "/opt/berth-wheels"  # an offline release's uploaded wheels in the image


def base_image(root, manifest):
    image = manifest.get("image") or engines.settings(root).get("base_image")
    if not image:
        raise AgentError("this release runs in a container but names no base image: give [serve] image in "
                         "berth.toml, or the server's base image with `berth server set-container --base-image`",
                         "bad_image")
    return engines.check_image(image, "base image")


def dockerfile(base, manifest, offline=False):
    """The build recipe: a venv only when the bundle has requirements (python3 -m venv needs the base's
    python3-venv), offline from the wheels copied in beside the release; the runner with the
    release's files, read-only at run time."""
    req = manifest.get("requirements")
    python = "/usr/bin/python3"
    lines = ["FROM %s" % base,
             "ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 "
             "PYTHONPATH=/opt/berth",
             "COPY berth_agent /opt/berth/berth_agent",
             "COPY release /srv/release"]
    if req:
        python = "/opt/venv/bin/python"
        lines.append('RUN ["/usr/bin/python3", "-m", "venv", "/opt/venv"]')
        pip = ["/opt/venv/bin/pip", "install", "--no-cache-dir", "--disable-pip-version-check"]
        if offline:
            lines.append("COPY wheels %s" % WHEELS_INSIDE)
            pip += ["--no-index", "--find-links", WHEELS_INSIDE]
        lines.append("RUN %s" % json.dumps(pip + ["-r", "/srv/release/bundle/" + req]))
    entry = [python, "-m", "berth_agent.runner", "--release", "/srv/release", "--port-file", "/tmp/berth.port",
             "--request-log", "/tmp/requests.jsonl", "--host", "0.0.0.0", "--port", str(PORT_INSIDE)]
    lines.append("ENTRYPOINT %s" % json.dumps(entry))
    return "\n".join(lines) + "\n"


def labels(release, actor, base):
    m = release["manifest"]
    who = "%s@%s" % (actor.get("user", "?"), actor.get("host", "?"))
    out = {"org.opencontainers.image.title": m["name"], "org.opencontainers.image.version": m["version"],
           "org.opencontainers.image.description": str(m.get("description") or "")[:500],
           "org.opencontainers.image.authors": ", ".join(m.get("authors") or [])[:500],
           "org.opencontainers.image.created": release.get("deployed_at") or "",
           "berth.bundle.sha256": release["sha256"], "berth.deployed_by": who[:200],
           "berth.entrypoint": m["entrypoint"], "berth.base_image": base}
    return {k: v.replace("\n", " ") for k, v in out.items()}


def build(root, model, version, release, actor, emit, source=None):
    """Build (or find already built) the release's image; its tag. A failed build raises with its log.
    `source` (wheelhouse.Source): an offline deploy's wheels, installed without any index."""
    path = engines.require(root)
    tag = engines.image_tag(model.name, version)
    manifest = release["manifest"]
    base = base_image(root, manifest)
    found = engines.inspect(path, tag, "{{json .Config.Labels}}")
    if isinstance(found, dict) and (found.get("berth.bundle.sha256"), found.get("berth.base_image")) == (
            release["sha256"], base):
        emit("log", step="build", line="image %s already built from this bundle" % tag)
        return tag
    context = os.path.join(root.meta, "build", "%s-%s" % (model.name, version))
    shutil.rmtree(context, ignore_errors=True)
    try:
        _context(root, context, model.release(version), release, base, source)
        args = [path, "build", "--tag", tag, "--network", engines.settings(root).get("build_network", "default")]
        if engines.settings(root).get("build_network") in (None, "default"):
            args = args[:-2]
        for k, v in sorted(labels(release, actor, base).items()):
            args += ["--label", "%s=%s" % (k, v)]
        args.append(context)
        _stream(args, emit, "the image of %s %s did not build" % (model.name, version))
    finally:
        shutil.rmtree(context, ignore_errors=True)
    return tag


def _context(root, context, release_dir, release, base, source):
    os.makedirs(os.path.join(context, "berth_agent"))
    offline = source is not None and "--no-index" in source.args
    if offline:  # the uploaded wheels under their names (links to the blobs: the engine reads the context)
        os.makedirs(os.path.join(context, "wheels"))
        for name, sha in source.wheels:
            blobs.place(root, sha, os.path.join(context, "wheels", name), 0o400)
    for name in os.listdir(AGENT_DIR):
        if name.endswith(".py"):
            shutil.copyfile(os.path.join(AGENT_DIR, name), os.path.join(context, "berth_agent", name))
    shutil.copytree(os.path.join(release_dir, "bundle"), os.path.join(context, "release", "bundle"))
    with open(os.path.join(context, "release", "release.json"), "w") as f:
        json.dump(release, f)
    with open(os.path.join(context, "Dockerfile"), "w") as f:
        f.write(dockerfile(base, release["manifest"], offline))


def _stream(args, emit, failure):
    """Run the build, each output line into the deploy's progress; the last lines into the error."""
    env = dict(engines.environment(), DOCKER_BUILDKIT="0")  # plain line output, and no buildx plugin needed
    tail = []
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env)
    try:
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            tail = (tail + [line])[-LOG_TAIL:]
            emit("log", step="build", line=line)
            if time.monotonic() > deadline:
                proc.kill()
                raise AgentError("%s within %ss" % (failure, BUILD_TIMEOUT_S), "build_failed", log=tail)
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    if code != 0:
        last = next((l for l in reversed(tail) if l.strip()), "exit %d" % code)
        raise AgentError("%s: %s" % (failure, last), "build_failed", log=tail)


def remove(root, model, version):
    """The release's image, when the release is pruned (errors ignored: the image may be in use)."""
    path, _kind = engines.find(root)
    if path:
        engines.run(path, ["rmi", engines.image_tag(model.name, version)], timeout=60)
