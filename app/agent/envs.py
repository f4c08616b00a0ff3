"""Virtualenvs shared between releases: an environment is keyed by the hash of what goes into it
(the Python that runs it, the requirements file, and every package file the bundle carries), built
once under `<root>/.berth/envs/<key>/`, and linked from each release as `.venv`. A release that
only changes weights reuses its predecessor's environment instead of building one."""
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys

from . import venv, wheelhouse

COMPLETE = ".berth-complete"
PACKAGE_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2")


def env_key(manifest, files, wheels=()):
    """What decides an environment's content; any change gives another key. The model's name is part
    of it: environments are shared between releases of one model only, since a model that dropped a
    .pth file into a shared one ran code inside other models after their restart."""
    requirements = manifest.get("requirements") or ""
    by_path = {f["path"]: f["sha256"] for f in files}
    packages = sorted((p, s) for p, s in by_path.items() if p.endswith(PACKAGE_SUFFIXES))
    material = {"model": manifest.get("name"), "python": sys.version, "executable": os.path.realpath(sys.executable),
                "requirements": [requirements, by_path.get(requirements)], "packages": packages}
    if wheels:  # an offline install: the wheels the desktop resolved decide what it holds
        material["wheels"] = sorted(wheels)
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:32]


def ensure(root, release_dir, manifest, files, emit, cancelled, source=None):
    """Link `release_dir/.venv` to the environment for this release, building it if needed (with
    `source`'s wheels or private index: wheelhouse.py). Returns (env_dir, reused)."""
    key = env_key(manifest, files, source.wheels if source else ())
    base = os.path.join(root.meta, "envs")
    env_dir = os.path.join(base, key)
    reused = os.path.exists(os.path.join(env_dir, COMPLETE))
    if not reused:
        remove(env_dir)  # a build cut short: start again
        os.makedirs(base, exist_ok=True)
        folder = wheelhouse.linked(root, source) if source and source.wheels else None
        try:
            # built in place: a virtualenv is not relocatable (its scripts name their own path)
            venv.build_at(env_dir, manifest.get("requirements"), os.path.join(release_dir, "bundle"), emit, cancelled,
                          source)
        except BaseException:
            remove(env_dir)
            raise
        finally:
            if folder:
                shutil.rmtree(folder, ignore_errors=True)
        with open(os.path.join(env_dir, COMPLETE), "w") as f:
            f.write(key + "\n")
        freeze(env_dir)
    else:
        emit("log", step="venv", line="reusing environment %s (same Python and requirements)" % key[:12])
    link = os.path.join(release_dir, ".venv")
    if os.path.lexists(link):
        os.unlink(link) if os.path.islink(link) else shutil.rmtree(link)
    os.symlink(os.path.relpath(env_dir, release_dir), link)
    return env_dir, reused


def prune(root, models):
    """Remove the environments no kept release of any model links to. Returns the keys removed."""
    base = os.path.join(root.meta, "envs")
    try:
        keys = set(os.listdir(base))
    except OSError:
        return []
    used = set()
    for model in models:
        try:
            versions = os.listdir(model.releases)
        except OSError:
            continue
        for v in versions:
            link = os.path.join(model.releases, v, ".venv")
            if os.path.islink(link):
                used.add(os.path.basename(os.path.normpath(os.path.join(os.path.dirname(link), os.readlink(link)))))
    removed = sorted(keys - used)
    for key in removed:
        remove(os.path.join(base, key))
    return removed


def freeze(env_dir):
    """Read-only once built (a release's model cannot drop files into it by accident); bytecode is
    compiled first, since nothing can be written there later."""
    subprocess.run([os.path.join(env_dir, "bin", "python"), "-I", "-m", "compileall", "-q", env_dir],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for folder, dirs, names in os.walk(env_dir):
        for name in names:
            _chmod(os.path.join(folder, name), lambda mode: mode & ~0o222)
    for folder, dirs, names in os.walk(env_dir, topdown=False):
        _chmod(folder, lambda mode: mode & ~0o222)


def remove(env_dir):
    """rmtree of a frozen environment: its folders are made writable again first."""
    for folder, dirs, names in os.walk(env_dir):
        _chmod(folder, lambda mode: mode | 0o700)
    shutil.rmtree(env_dir, ignore_errors=True)


def _chmod(path, change):
    try:
        st = os.lstat(path)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(path, change(stat.S_IMODE(st.st_mode)))
    except OSError:
        pass
