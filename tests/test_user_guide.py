"""docs/user-guide.md, run as a new user would: each `sh` block through bash, in order, in one fresh
folder that has the checkout's examples, with `berth` on PATH and a fresh $BERTH_HOME; a command that
fails fails the test with its output. `text` blocks need a real remote server: they are checked to
name only commands that exist. The console's Help menu shows this same file (test_help_menu.py)."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from agent_kit import stop_all

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "user-guide.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


def blocks():
    return FENCE.findall(GUIDE.read_text())


def test_the_guide_has_only_blocks_this_test_knows():
    langs = [lang for lang, _ in blocks()]
    assert set(langs) <= {"sh", "text"}, langs
    assert langs.count("sh") >= 8  # the guide's runnable tour; a block renamed to `text` would escape the test


def test_the_text_blocks_name_commands_that_exist(capsys):
    from app.cli import build_parser

    parser = build_parser()
    for lang, body in blocks():
        if lang != "text":
            continue
        for line in body.splitlines():
            argv = shlex.split(line)
            assert argv[0] == "berth", line
            with pytest.raises(SystemExit) as end:
                parser.parse_args(argv[1:] + ["--help"])
            assert end.value.code == 0, line


@pytest.mark.timeout(420)
def test_every_sh_block_runs_as_written(tmp_path, berth_home):
    (tmp_path / "resources").symlink_to(REPO / "resources")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               BERTH_HOME=str(berth_home), PYTHONPATH=str(REPO), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    ran = []
    try:
        for lang, body in blocks():
            if lang != "sh":
                continue
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=tmp_path, env=env, text=True,
                               capture_output=True, timeout=300)
            assert r.returncode == 0, f"this block of the guide failed:\n{body}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
            ran.append(r.stdout)
    finally:
        subprocess.run(["bash", "-c", "berth alert remove iris-slow --server local; "
                        "berth job remove hourly --server local; "
                        "berth experiment stop iris --server local"], cwd=tmp_path, env=env, capture_output=True)
        stop_all(berth_home / "local")
    out = "\n".join(ran)
    assert '{"class": "setosa"' in out  # the first block's predict answered
    assert "40 label(s) kept" in out
    sides = re.findall(r"^[AB] +1\.[01]\.0 +0\.5 +(\d+) +0 ", out, re.M)  # the experiment's table
    assert len(sides) == 2 and sum(map(int, sides)) == 40, out
    assert (tmp_path / "audit.pdf").read_bytes()[:5] == b"%PDF-"
    assert (tmp_path / "results.db").exists()  # the job wrote its results
