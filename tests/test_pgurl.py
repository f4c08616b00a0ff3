"""A job's PostgreSQL URL and the server's passfile (app/agent/pgurl.py), without a server: each bad
URL refused with one line, the passfile's escaping and merging, psycopg's messages scrubbed."""
import os
import stat
from pathlib import Path

import pytest

from app.agent import pgurl
from app.agent.jobpostgres import one_line
from app.agent.layout import AgentError


def test_a_url_parses_and_the_port_is_always_written():
    assert pgurl.parse("postgresql://scorer@db.internal/results") == {
        "user": "scorer", "host": "db.internal", "port": 5432, "dbname": "results"}
    assert pgurl.canonical("postgres://u@10.0.0.5:6543/d_1") == "postgresql://u@10.0.0.5:6543/d_1"
    assert pgurl.canonical("postgresql://u@[::1]:5433/db") == "postgresql://u@[::1]:5433/db"


@pytest.mark.parametrize("url, code, says", [
    ("postgresql://u:hunter2@h:5432/db", "password_in_url", "has a password inside it: give the URL without it "
                                                            "(postgresql://u@h:5432/db)"),
    ("postgresql://u:@h/db", "password_in_url", "has a password inside it"),
    ("postgresql://h:5432/db", "bad_output", "the user is missing"),
    ("postgresql://u@h:5432/db?sslmode=disable", "bad_output", "no ?options"),
    ("postgresql://u@h:5432", "bad_output", "expected postgresql://USER@HOST:PORT/DATABASE"),
    ("postgresql://u@h:99999/db", "bad_output", "expected postgresql://USER@HOST:PORT/DATABASE"),
    ("postgresql://u@h;rm -rf/db", "bad_output", "expected postgresql://USER@HOST:PORT/DATABASE"),
    ("postgresql://u@h/db name", "bad_output", "expected postgresql://USER@HOST:PORT/DATABASE"),
    ("mysql://u@h/db", "bad_output", "expected postgresql://USER@HOST:PORT/DATABASE"),
])
def test_each_bad_url_is_one_line_and_never_shows_a_password(url, code, says):
    with pytest.raises(AgentError) as e:
        pgurl.parse(url)
    assert e.value.code == code and says in str(e.value) and "\n" not in str(e.value)
    assert "hunter2" not in str(e.value)


def test_the_passfile_escapes_merges_and_is_0600(tmp_path):
    path = str(tmp_path / "meta" / "pgpass")
    a, b = pgurl.parse("postgresql://u@h:5432/a"), pgurl.parse("postgresql://u@h:5432/b")
    pgurl.write_passfile(path, [(a, "p:w\\1"), (b, "two")])
    assert Path(path).read_text() == "h:5432:a:u:p\\:w\\\\1\nh:5432:b:u:two\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    pgurl.write_passfile(path, [(a, "new")])  # a new password for a: replaces its line, keeps b's
    assert Path(path).read_text() == "h:5432:b:u:two\nh:5432:a:u:new\n"
    trial = str(tmp_path / "meta" / "trial")
    pgurl.write_passfile(trial, [(b, "three")], base=path)  # the job add check's copy: the real one unchanged
    assert Path(trial).read_text() == "h:5432:a:u:new\nh:5432:b:u:three\n" and "three" not in Path(path).read_text()
    assert [n for n in os.listdir(tmp_path / "meta") if n.startswith(".pgpass-")] == []
    for bad in ("", "two\nlines", None):
        with pytest.raises(AgentError, match="one line of text"):
            pgurl.write_passfile(path, [(a, bad)])


def test_psycopg_messages_are_one_line_and_scrubbed():
    error = Exception('connection failed: connection to server at "h" (10.0.0.1), port 5432 failed: FATAL:  '
                      'password authentication failed for user "u"\npostgresql://u:hunter2@h/db')
    said = one_line(error, secret="hunter2")
    assert "\n" not in said and "hunter2" not in said and 'password authentication failed for user "u"' in said
    assert "hunter2" not in one_line(Exception("dsn postgresql://u:hunter2@h/db"))  # a URL's password, unknown
