"""Run `berth` in-process, as a user would type it, and capture what it prints."""
import json
import shutil
from pathlib import Path

from app.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "resources" / "examples"


class Run:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return f"Run(code={self.code}, out={self.out[-500:]!r}, err={self.err[-1500:]!r})"


def berth(capsys, *argv) -> Run:
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse: wrong usage
        code = e.code
    out, err = capsys.readouterr()
    return Run(code, out, err)


def iris_copy(tmp_path: Path, version: str | None = None, folder: str | None = None) -> Path:
    """A copy of the iris example, optionally with another version (as a data scientist bumps it)."""
    dest = tmp_path / (folder or f"iris-{version or 'orig'}")
    n = 1
    while dest.exists():
        n += 1
        dest = dest.with_name(f"{dest.name.split('~')[0]}~{n}")
    shutil.copytree(EXAMPLES / "iris", dest, ignore=shutil.ignore_patterns("__pycache__"))
    if version:
        toml = dest / "berth.toml"
        text = toml.read_text()
        import re
        toml.write_text(re.sub(r'(?m)^version\s*=\s*"[^"]*"', f'version = "{version}"', text, count=1))
    return dest


def iris_input() -> str:
    return (EXAMPLES / "iris" / "example.json").read_text()


def break_model(folder: Path) -> Path:
    (folder / "model.py").write_text('raise RuntimeError("broken on purpose")\n')
    return folder
