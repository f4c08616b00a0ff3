"""Which interpreter runs the `local` agent: this one from source; the computer's python3 in the
packaged app (sys.frozen, where sys.executable is Berth itself), and a clear error without one."""
import sys

import pytest

from app.errors import BerthError
from app.remote.local import LocalTransport, local_python


def test_from_source_the_local_agent_runs_with_this_interpreter():
    assert local_python() == sys.executable
    assert LocalTransport("/tmp/x").python == sys.executable


def test_packaged_the_local_agent_runs_with_python3_on_path(monkeypatch, tmp_path):
    python3 = tmp_path / "python3"
    python3.write_text("#!/bin/sh\n")
    python3.chmod(0o755)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert local_python() == str(python3)


def test_packaged_without_python3_says_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BerthError, match="needs python3 on this computer.*install python3"):
        LocalTransport("/tmp/x")
