"""What `berth releases` and `berth diff` need beyond release.json's summary: the release's
requirements file as text and its file list, read from the release folder on request only (a
bundle can hold thousands of files, and a status call must stay small)."""
import os

from .layout import AgentError, inside_bundle

REQUIREMENTS_MAX_BYTES = 64 * 1024


def requirements_text(model, info):
    """The requirements file the manifest names, as text; None when it names none or it is gone."""
    rel = (info.get("manifest") or {}).get("requirements")
    if not rel:
        return None
    try:
        path = inside_bundle(os.path.join(model.release(info["version"]), "bundle"), rel)
        with open(path, "rb") as f:
            data = f.read(REQUIREMENTS_MAX_BYTES + 1)
    except (OSError, AgentError):
        return None
    if len(data) > REQUIREMENTS_MAX_BYTES:
        raise AgentError("the requirements file %s of %s %s is larger than 64 KiB"
                         % (rel, model.name, info["version"]), "too_large")
    return data.decode("utf-8", "replace")


def file_list(info):
    return [{"path": f.get("path"), "sha256": f.get("sha256"), "size": f.get("size")}
            for f in info.get("files") or [] if isinstance(f, dict)]
