"""Which module a bundle's entry point may name, and loading it from the bundle folder itself.

The runner imports the entry point with the bundle first on sys.path, but a module that is already
imported (`os`, `json`, the runner's own package) is taken from sys.modules: `entrypoint =
"os:system"` beside a harmless `os.py` passed the check (which read the bundle's os.py) and made
/predict a shell. So a name of the standard library, or of the runner's own package, is refused
here and in `berth bundle check` (which imports this module), and the runner verifies that the
module it got is a file of the bundle."""
import importlib
import os
import sys

RUNNER_PACKAGES = ("berth_agent", __name__.split(".")[0])  # the agent's name on a server, and here


def stdlib_names():
    """Top-level names of the standard library (sys.stdlib_module_names from 3.10; listed by hand
    from the library folders on 3.8 and 3.9)."""
    names = getattr(sys, "stdlib_module_names", None)
    if names:
        return frozenset(names)
    found = set(sys.builtin_module_names)
    stdlib = os.path.dirname(os.__file__)  # not sysconfig's paths: inside a venv they name the venv
    folders = [stdlib, os.path.join(stdlib, "lib-dynload")] + [p for p in sys.path if p.endswith("lib-dynload")]
    for folder in folders:
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            if entry in ("site-packages", "dist-packages"):
                continue
            if entry.endswith((".py", ".so", ".pyd")) or os.path.isfile(os.path.join(folder, entry, "__init__.py")):
                found.add(entry.split(".", 1)[0])
    return frozenset(found)


def module_problem(module, loaded=()):
    """Why the entry point's module cannot be the bundle's own file, or None."""
    top = module.split(".", 1)[0]
    if top in stdlib_names():
        return ("names %r, a module of Python's standard library: the runner would import Python's own, "
                "not the bundle's file" % top)
    if top in RUNNER_PACKAGES or top in loaded:
        return "names %r, a module the runner has already imported: it would not load the bundle's file" % top
    return None


def load_entrypoint(bundle, entrypoint):
    """Import `module:attr` from the bundle folder; a class is built once, its instances predict."""
    module_name, _, attr = entrypoint.partition(":")
    problem = module_problem(module_name, sys.modules)
    if problem:
        raise ImportError("entrypoint %s %s; rename the module" % (entrypoint, problem))
    os.chdir(bundle)
    sys.path.insert(0, bundle)
    module = importlib.import_module(module_name)
    where = os.path.realpath(getattr(module, "__file__", None) or "")
    if not where.startswith(os.path.realpath(bundle) + os.sep):
        raise ImportError("entrypoint %s was loaded from %s, not from the bundle" % (entrypoint, where or "nowhere"))
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    if isinstance(obj, type):
        instance = obj()
        if not callable(getattr(instance, "predict", None)):
            raise TypeError("%s has no predict() method" % entrypoint)
        return instance.predict
    if not callable(obj):
        raise TypeError("%s is not callable" % entrypoint)
    return obj
