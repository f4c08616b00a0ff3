"""What a runner's process may see of the environment: an allow-list, plus what the bundle declares
under [serve] env. The runner used to inherit the agent's whole environment, and on `local` that is
the operator's: a model read AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN and SSH_AUTH_SOCK (a door into the
operator's SSH agent), and the values landed in the request log."""
import os
import re

PASSED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR")
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
RESERVED_PREFIXES = ("PYTHON", "LD_", "BERTH_")  # the runner's own machinery, not the model's


# What pip needs to reach an index (proxies, certificates, its config and cache, PIP_*), on top of
# PASSED: pip builds sdists and local projects, so it runs code of the bundle or the index at deploy
# time, and got the agent's whole environment (on a server, the SSH session's, SSH_AUTH_SOCK included).
PIP_PASSED = PASSED + ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                       "no_proxy", "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
                       "CURL_CA_BUNDLE", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")


def pip_environment(source=None):
    """The environment of the agent's venv and pip processes (and of the local agent itself)."""
    source = os.environ if source is None else source
    return {k: v for k, v in source.items() if k in PIP_PASSED or k.startswith(("LC_", "PIP_"))}


def declared_problem(name, value):
    """Why a variable of [serve] env cannot be set (the bundle check and the agent both ask), or None."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        return "%r is not a variable name (letters, digits, _; not starting with a digit)" % (name,)
    if name.upper().startswith(RESERVED_PREFIXES):
        return "%s is reserved: PYTHON*, LD_* and BERTH_* belong to the runner" % name
    if not isinstance(value, str) or "\0" in value or len(value) > 4096:
        return "%s must be a string of at most 4096 characters" % name
    return None


def runner_environment(declared=None, source=None):
    """The runner's environment: the allow-listed variables of `source` (the agent's), LC_*, then the
    bundle's declared ones (each checked again here: the desktop's check may have been skipped)."""
    source = os.environ if source is None else source
    env = {k: v for k, v in source.items() if k in PASSED or k.startswith("LC_")}
    for name, value in sorted((declared or {}).items()):
        if declared_problem(name, value) is None:
            env[name] = value
    return env
