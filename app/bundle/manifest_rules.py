"""What each key of berth.toml may hold; every rule reports through a collector, none stops early."""
from __future__ import annotations

import difflib
import keyword
import math
import re

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from app.agent.inputshape import CHECK_VALUES as INPUT_CHECKS
from app.agent.layout import NAME_RE, VERSION_RE
from app.agent.modelpool import DEFAULT_THREADS, MAX_THREADS
from app.agent.runnerenv import declared_problem

from .paths import relpath_problem

ENTRYPOINT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")
NAME_HINT = "lowercase letter first, then a-z 0-9 '-', at most 63"
VERSION_HINT = "1-64 characters of A-Z a-z 0-9 . _ + -, a letter or digit first, e.g. 1.0.0"
ENTRYPOINT_HINT = "module:attribute, e.g. model:Model or pkg.serve:predict"
SHA256_RE = re.compile(r"[0-9a-f]{64}")
MAX_HEALTH_TIMEOUT_S = 3600

TABLES = {
    "model": ("name", "version", "entrypoint", "description", "authors", "requirements", "python", "input_example"),
    "training": ("dataset", "dataset_sha256", "code_commit", "params", "metrics"),
    "serve": ("runtime", "health_timeout_s", "env", "input_schema", "input_check", "port", "workers", "model_threads",
              "image", "memory", "cpus"),
}
_TOML_TYPES = {str: "a string", int: "an integer", float: "a float", bool: "a boolean", list: "an array", dict: "a table"}


def type_name(value) -> str:
    return _TOML_TYPES.get(type(value), "a " + type(value).__name__)


def validate(data: dict, out) -> dict:
    """Check the parsed TOML; returns the Manifest keyword arguments that were found valid."""
    for key in data:
        if key not in TABLES:
            _unknown(out, key, key, TABLES, "known tables: [model], [training], [serve]")
    values: dict = {}
    model = data.get("model")
    if model is None:
        out.error("model", "the [model] table is missing", "add a [model] table with name, version and entrypoint")
    elif _table(out, "model", model):
        _model(model, out, values)
    for table, check in (("training", _training), ("serve", _serve)):
        if table in data and _table(out, table, data[table]):
            check(data[table], out, values)
    return values


def _table(out, key, value) -> bool:
    if isinstance(value, dict):
        for sub in value:
            if sub not in TABLES[key]:
                _unknown(out, f"{key}.{sub}", sub, TABLES[key], f"known keys in [{key}]: {', '.join(TABLES[key])}")
        return True
    out.error(key, f"must be a table, not {type_name(value)}", f"write it as a [{key}] section")
    return False


def _unknown(out, key, name, known, hint) -> None:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"did you mean '{close[0]}'?" if close else hint
    out.warning(key, "unknown key, ignored" if "." in key else f"unknown table [{key}], ignored", hint)


def _string(out, key, value, hint=None) -> bool:
    if isinstance(value, str):
        return True
    out.error(key, f"must be a string, not {type_name(value)}", hint)
    return False


def _model(model: dict, out, values: dict) -> None:
    checks = {"name": (NAME_RE, "is not a valid name", NAME_HINT),
              "version": (VERSION_RE, "is not a valid version", VERSION_HINT)}
    for key, (pattern, message, hint) in checks.items():
        if key not in model:
            out.error(f"model.{key}", "required key is missing", f'add {key} = "..." under [model] ({hint})')
        elif _string(out, f"model.{key}", model[key], hint):
            if pattern.fullmatch(model[key]):
                values[key] = model[key]
            else:
                out.error(f"model.{key}", f"{model[key]!r} {message}", hint)
    if "entrypoint" not in model:
        out.error("model.entrypoint", "required key is missing", f'add entrypoint = "model:Model" under [model] ({ENTRYPOINT_HINT})')
    elif _string(out, "model.entrypoint", model["entrypoint"], ENTRYPOINT_HINT):
        problem = entrypoint_problem(model["entrypoint"])
        if problem:
            out.error("model.entrypoint", f"{model['entrypoint']!r} {problem}", ENTRYPOINT_HINT)
        else:
            values["entrypoint"] = model["entrypoint"]
    if "description" in model and _string(out, "model.description", model["description"]):
        values["description"] = model["description"]
    if "authors" in model:
        authors = model["authors"]
        if isinstance(authors, list) and all(isinstance(a, str) for a in authors):
            values["authors"] = tuple(authors)
        else:
            out.error("model.authors", "must be a list of strings", 'e.g. authors = ["Ada Lovelace <ada@example.com>"]')
    for key in ("requirements", "input_example"):
        if key in model and _string(out, f"model.{key}", model[key]):
            problem = relpath_problem(model[key])
            if problem:
                out.error(f"model.{key}", f"path {model[key]!r} {problem}",
                          "give a path relative to the bundle root, with '/' separators, e.g. requirements.txt")
            else:
                values[key] = model[key]
    if "python" in model and _string(out, "model.python", model["python"]):
        try:
            if not model["python"].strip():
                raise InvalidSpecifier("empty")
            SpecifierSet(model["python"])
            values["python"] = model["python"]
        except InvalidSpecifier:
            out.error("model.python", f"{model['python']!r} is not a valid Python version specifier",
                      'a PEP 440 specifier set, e.g. ">=3.9" or ">=3.9,<3.13"')


def entrypoint_problem(value: str) -> str | None:
    """Why `value` is not `module:attribute`, in the operator's words, or None."""
    module, colon, attr = value.partition(":")
    if not colon:
        return "has no ':' between module and attribute"
    if not module:
        return "names no module before ':'"
    if not attr:
        return "names no attribute after ':'"
    if not ENTRYPOINT_RE.fullmatch(value):
        return "is not made of Python identifiers"
    if any(keyword.iskeyword(p) for p in module.split(".") + [attr]):
        return "uses a Python keyword as a name"
    return None


def _training(training: dict, out, values: dict) -> None:
    for key in ("dataset", "code_commit"):
        if key in training:
            _string(out, f"training.{key}", training[key])
    if "dataset_sha256" in training and _string(out, "training.dataset_sha256", training["dataset_sha256"]):
        digest = training["dataset_sha256"]
        if not SHA256_RE.fullmatch(digest):
            hint = "use lowercase hex" if SHA256_RE.fullmatch(digest.lower()) else "64 lowercase hex digits, as printed by sha256sum"
            out.error("training.dataset_sha256", f"{digest!r} is not a sha256 digest", hint)
    if "params" in training and not isinstance(training["params"], dict):
        out.error("training.params", f"must be a table, not {type_name(training['params'])}", "e.g. params = { epochs = 10 }")
    metrics = training.get("metrics", {})
    if not isinstance(metrics, dict):
        out.error("training.metrics", f"must be a table, not {type_name(metrics)}", "e.g. metrics = { accuracy = 0.97 }")
    else:
        for name, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                out.error(f"training.metrics.{name}", f"must be a number, not {type_name(value)}",
                          "metrics hold flat numbers only, e.g. accuracy = 0.97; put the rest under params")
    values["training"] = training


def _serve(serve: dict, out, values: dict) -> None:
    runtime = serve.get("runtime", "venv")
    if runtime not in ("venv", "container"):
        out.error("serve.runtime", f"{runtime!r} is not a runtime", 'runtime is "venv" (the default) or "container"')
    else:
        values["runtime"] = runtime
    _container(serve, out, values)
    if "env" in serve:
        _env(serve["env"], out, values)
    if "health_timeout_s" in serve:
        value = serve["health_timeout_s"]
        hint = f"seconds to wait for the first healthy answer: above 0, at most {MAX_HEALTH_TIMEOUT_S}; default 60"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.error("serve.health_timeout_s", f"must be a number, not {type_name(value)}", hint)
        elif math.isnan(value) or not 0 < value <= MAX_HEALTH_TIMEOUT_S:
            out.error("serve.health_timeout_s", f"{value!r} is out of range", hint)
        else:
            values["health_timeout_s"] = float(value)
    if "port" in serve:
        _port(serve["port"], out, values)
    if "workers" in serve:
        _workers(serve["workers"], out, values)
    if "model_threads" in serve:
        _model_threads(serve["model_threads"], out, values)
    _input(serve, out, values)


def _container(serve: dict, out, values: dict) -> None:
    """[serve] image (the base image of a container release), memory ("512m") and cpus (1.5): the
    container's limits; the agent checks them again (app/agent/containerengine.py)."""
    from app.agent.containerengine import IMAGE_HINT, IMAGE_RE, MEMORY_RE

    if "image" in serve and _string(out, "serve.image", serve["image"]):
        if len(serve["image"]) > 255 or not IMAGE_RE.fullmatch(serve["image"]):
            out.error("serve.image", f"{serve['image']!r} is not a valid image name", IMAGE_HINT)
        else:
            values["image"] = serve["image"]
    if "memory" in serve and _string(out, "serve.memory", serve["memory"], "a size such as 512m or 2g"):
        if not MEMORY_RE.fullmatch(serve["memory"].lower()):
            out.error("serve.memory", f"{serve['memory']!r} is not a size", "a size such as 512m or 2g")
        else:
            values["memory"] = serve["memory"].lower()
    if "cpus" in serve:
        value = serve["cpus"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1024:
            out.error("serve.cpus", f"{value!r} is not a number of CPUs", "a number above 0, e.g. 1.5")
        else:
            values["cpus"] = float(value)
    for key in ("image", "memory", "cpus"):
        if key in values and serve.get("runtime", "venv") != "container":
            out.warning(f"serve.{key}", 'is used only with runtime = "container"', 'add runtime = "container"')


def _port(value, out, values: dict) -> None:
    """[serve] port: the stable port the model keeps on every server (docs/serving.md)."""
    hint = ("a TCP port from 1024 to 65535 that no other model on the server uses; leave it out and each "
            "server picks one from its range")
    if isinstance(value, bool) or not isinstance(value, int):
        out.error("serve.port", f"must be an integer, not {type_name(value)}", hint)
    elif not 1024 <= value <= 65535:
        out.error("serve.port", f"{value} is out of range", hint)
    else:
        values["port"] = value


MAX_WORKERS = 64


def _workers(value, out, values: dict) -> None:
    """[serve] workers: how many runner processes serve the model on its one port (docs/serving.md)."""
    hint = f"a whole number from 1 to {MAX_WORKERS}: 1 (the default) is one process; more share the model's port"
    if isinstance(value, bool) or not isinstance(value, int):
        out.error("serve.workers", f"must be an integer, not {type_name(value)}", hint)
    elif not 1 <= value <= MAX_WORKERS:
        out.error("serve.workers", f"{value} is out of range", hint)
    else:
        values["workers"] = value


def _model_threads(value, out, values: dict) -> None:
    """[serve] model_threads: the runner's threads calling the model (docs/serving.md); 0 calls it on
    the event loop, the fastest for a model of microseconds that must never wait."""
    hint = (f"an integer from 0 to {MAX_THREADS} (default {DEFAULT_THREADS}); 1 for a model that is not "
            "thread-safe, 0 to call it on the event loop (then /health waits behind a prediction)")
    if isinstance(value, bool) or not isinstance(value, int):
        out.error("serve.model_threads", f"must be an integer, not {type_name(value)}", hint)
    elif not 0 <= value <= MAX_THREADS:
        out.error("serve.model_threads", f"{value} is out of range", hint)
    else:
        values["model_threads"] = value


def _input(serve: dict, out, values: dict) -> None:
    """[serve] input_schema (a path: JSON Schema in TOML is unreadable and TOML has no null) and
    input_check ("on", the default, or "off" for models that take free-form input)."""
    if "input_schema" in serve and _string(out, "serve.input_schema", serve["input_schema"]):
        problem = relpath_problem(serve["input_schema"])
        if problem:
            out.error("serve.input_schema", f"path {serve['input_schema']!r} {problem}",
                      "give the path of a .json file relative to the bundle root, e.g. input_schema.json")
        else:
            values["input_schema"] = serve["input_schema"]
    if "input_check" in serve:
        value = serve["input_check"]
        if value in INPUT_CHECKS:
            values["input_check"] = value
            if value == "off" and "input_schema" in serve:
                out.warning("serve.input_schema", "not used while input_check = \"off\"",
                            "remove one of input_check and input_schema")
        else:
            out.error("serve.input_check", f"{value!r} is not \"on\" or \"off\"",
                      'input_check = "off" lets any JSON through to the model; the default "on" checks it '
                      "against input_schema or the shape of the input example")


def _env(env, out, values: dict) -> None:
    """[serve] env: variables the runner gets besides PATH, HOME, the locale and TZ (no secrets:
    a bundle is not a vault; secrets belong to the server)."""
    hint = 'a table of names to strings, e.g. [serve.env] OMP_NUM_THREADS = "2"'
    if not isinstance(env, dict):
        out.error("serve.env", f"must be a table, not {type_name(env)}", hint)
        return
    good = {}
    for name, value in env.items():
        problem = declared_problem(name, value)
        if problem:
            out.error(f"serve.env.{name}", problem, hint)
        else:
            good[name] = value
    values["env"] = good
