"""The process's one session reader (app/remote/session_reader.py) on real subprocess pipes: lines
cut anywhere are put back together, a last line without a newline is kept, an owner that closes
its end first still gets on_end, many outputs share one thread, and it ends when idle; on a real
SSH channel, stderr written while it runs neither spins the reader nor is lost."""
import os
import subprocess
import sys
import threading
import time

import pytest

from app.remote import session_reader
from app.remote.session_reader import SessionReader
from session_kit import wait_for

CHUNKS = r'''
import sys, time
for part in [b'{"x": 1', b'}\n{"y"', b': 2}\n\n', b'tail']:
    sys.stdout.buffer.write(part); sys.stdout.buffer.flush(); time.sleep(0.15)
'''


def child(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)


@pytest.fixture
def reader(monkeypatch):
    """A reader of the test's own that ends (closing its selector) soon after its last output."""
    monkeypatch.setattr(session_reader, "IDLE_S", 0.3)
    reader = SessionReader()
    yield reader
    wait_for(lambda: reader._thread is None, 10, "the reader to end")


class Collect:
    def __init__(self):
        self.lines, self.ends, self.threads = [], 0, set()
        self.ended = threading.Event()

    def on_line(self, raw):
        self.threads.add(threading.current_thread().name)
        self.lines.append(raw)

    def on_end(self):
        self.ends += 1
        self.ended.set()


def test_lines_cut_anywhere_come_whole_and_the_last_one_without_a_newline_too(reader):
    got = Collect()
    proc = child(CHUNKS)
    try:
        reader.add("t", proc.stdout, got.on_line, got.on_end)
        assert got.ended.wait(20)
    finally:
        proc.wait()
        proc.stdout.close()
    assert got.lines == [b'{"x": 1}\n', b'{"y": 2}\n', b"\n", b"tail"]
    assert got.ends == 1 and got.threads == {"berth-sessions"}


def test_an_owner_that_closes_its_pipe_first_still_hears_the_end(reader):
    """LocalTransport's abort closes stdout right after killing, maybe before the reader saw the
    end: the reader waits on a dup of it."""
    got = Collect()
    proc = child("import time; print('one', flush=True); time.sleep(60)")
    reader.add("t", proc.stdout, got.on_line, got.on_end)
    wait_for(lambda: got.lines, 20, "the first line")
    proc.stdout.close()  # before the end was read: the selector must not lose it (nor keep the number)
    proc.kill()
    proc.wait()
    assert got.ended.wait(10) and got.lines == [b"one\n"] and got.ends == 1
    wait_for(lambda: reader.watched() == 0, 5, "the reader to let it go")


def test_many_outputs_share_one_thread_and_it_ends_when_idle(reader):
    before = {t.ident for t in threading.enumerate()}
    procs = [child("import time\nfor i in range(5): print(i, flush=True); time.sleep(0.1)") for _ in range(20)]
    outs = [Collect() for _ in procs]
    try:
        for proc, got in zip(procs, outs):
            reader.add("t", proc.stdout, got.on_line, got.on_end)
        new = [t.name for t in threading.enumerate() if t.ident not in before]
        assert new == ["berth-sessions"], new
        assert all(got.ended.wait(20) for got in outs)
    finally:
        for proc in procs:
            proc.wait()
            proc.stdout.close()
    assert all(got.lines == [b"%d\n" % i for i in range(5)] for got in outs)
    wait_for(lambda: not [t for t in threading.enumerate() if t.ident not in before], 5, "the reader to end")
    again = Collect()  # and the next one starts it again
    proc = child("print('back')")
    try:
        reader.add("t", proc.stdout, again.on_line, again.on_end)
        assert again.ended.wait(20) and again.lines == [b"back\n"]
    finally:
        proc.wait()
        proc.stdout.close()


def test_what_cannot_be_selected_on_gets_a_thread_of_its_own(reader):
    got = Collect()
    reader.add("plain", [b"a\n", b"b\n"], got.on_line, got.on_end)
    assert got.ended.wait(5) and got.lines == [b"a\n", b"b\n"] and got.threads == {"berth-session-plain"}


def test_a_failing_handler_does_not_stop_the_reader(reader):
    got = Collect()

    def bad(raw):
        raise RuntimeError("a bug in one session")

    broken = child("print('x')")
    proc = child("import time; time.sleep(0.3); print('still read')")
    try:
        reader.add("bad", broken.stdout, bad, lambda: None)
        reader.add("good", proc.stdout, got.on_line, got.on_end)
        assert got.ended.wait(20) and got.lines == [b"still read\n"]
    finally:
        for p in (broken, proc):
            p.wait()
            p.stdout.close()


# stderr first, stdout 2 s later: paramiko's fileno() is ready for either, and unread stderr kept
# select() returning at once for ever (issue 23: the console's reader thread at 19-25 % of a core)
STDERR_FIRST = """echo 'a warning on stderr' >&2; sleep 2; echo '{"x": 1}'; echo 'last words' >&2; exit 3"""


def thread_cpu_s(native_id: int) -> float:
    with open(f"/proc/self/task/{native_id}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads a thread's CPU time from /proc")
def test_stderr_on_an_ssh_channel_neither_spins_the_reader_nor_is_lost(reader, sshd, tmp_path):
    from app.remote.connect import open_transport
    from app.store.servers import ServerConfig

    t = open_transport(ServerConfig(name="box", host=sshd.host, port=sshd.port, user=sshd.user,
                                    key_path=str(sshd.key_path), root=str(tmp_path / "srv")), sshd.fingerprint)
    try:
        out, wait, _abort = t._exec(["sh", "-c", STDERR_FIRST], b"")
        got = Collect()
        reader.add("box", out, got.on_line, got.on_end)
        wait_for(lambda: reader._thread is not None, 10, "the reader to start")
        tid = reader._thread.native_id
        time.sleep(0.5)  # the stderr line is in, stdout has nothing yet
        before = thread_cpu_s(tid)
        time.sleep(1.0)
        assert thread_cpu_s(tid) - before < 0.05  # was all it could get (0.2-1 s, by the load)
        assert got.ended.wait(20)
        code, text = wait()
    finally:
        t.close()
    assert got.lines == [b'{"x": 1}\n'] and got.ends == 1
    assert code == 3 and text == "a warning on stderr\nlast words\n"
