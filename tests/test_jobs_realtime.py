"""ONE real-time test: a job every minute on a loopback OpenSSH server, added with `berth job add`;
then Berth is closed and the sshd itself stopped (no desktop connection at all), and a file dropped
in the inbox is processed by the scheduler within the next minute."""
import time

import pytest

from agent_kit import make_bundle
from app.agent import scheduler
from app.agent.layout import Root
from cli_kit import berth
from jobs_kit import cleanup, BATCH_MODEL, rows, write_csv


@pytest.mark.slow
def test_every_minute_with_berth_closed(capsys, box, tmp_path):
    srv, root = box
    folder = make_bundle(tmp_path / "scorer", name="scorer", model_src=BATCH_MODEL.format(version="1.0.0"))
    assert berth(capsys, "deploy", folder, "--server", "box").code == 0
    inbox, out = tmp_path / "inbox", tmp_path / "results.db"
    inbox.mkdir()
    try:
        r = berth(capsys, "job", "add", "minutely", "--model", "scorer", "--server", "box", "--every", "1m",
                  "--input-dir", inbox, "--pattern", "*.csv", "--output", f"sqlite:///{out}", "--table", "scores")
        assert r.code == 0, r
        pid = scheduler.alive(Root(str(root)))
        assert pid, "the agent started no scheduler"
        srv.stop()  # Berth is closed and the server's sshd is gone: nothing but the scheduler is left

        write_csv(inbox / "drop.csv", [{"x": 1}, {"x": 2}, {"x": -3}])
        dropped = time.monotonic()
        while not (inbox / "done" / "drop.csv").exists():
            assert time.monotonic() - dropped < 60 + 15, "the dropped file was not processed within the next minute"
            time.sleep(0.5)
        took = time.monotonic() - dropped
        assert sorted(rows(out, "SELECT y FROM scores")) == [(2,), (4,)]
        assert rows(out, "SELECT input_ref FROM scores_errors") == [("drop.csv:4",)]
        assert scheduler.alive(Root(str(root))) == pid
        print(f"processed {took:.1f} s after it was dropped")
    finally:
        cleanup(root)
