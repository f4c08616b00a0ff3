"""A real PostgreSQL server for the tests (Debian's postgresql 15): a temp data directory, password
(scram-sha-256) auth for the superuser `berth`, listening on 127.0.0.1 on a free port, its unix
socket in the temp dir. As root (CI) it runs as the `postgres` user: initdb refuses root."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

BIN = Path("/usr/lib/postgresql/15/bin")
PSQL = shutil.which("psql") or str(BIN / "psql")
PASSWORD = "pg:pw\\with-colon-" + uuid.uuid4().hex[:8]  # a ':' and a '\' to escape in the passfile


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _missing(message: str) -> None:
    """Skipped on a developer's machine without PostgreSQL; in CI (.ci/run installs it) a failure."""
    if os.environ.get("CI"):
        pytest.fail(message + "; .ci/run installs it, so in CI this is a defect", pytrace=False)
    pytest.skip(message)


class PgServer:
    def __init__(self):
        if not (BIN / "initdb").exists() or not Path(PSQL).exists():
            _missing(f"PostgreSQL 15 is not installed ({BIN}/initdb, psql): apt-get install postgresql")
        self.user = {}
        if os.getuid() == 0:  # initdb and postgres refuse to run as root
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                _missing("running as root and there is no `postgres` user to run PostgreSQL as")
            self.user = {"user": pw.pw_uid, "group": pw.pw_gid}
        self.base = Path(tempfile.mkdtemp(prefix="berth-pg-"))
        if self.user:
            os.chown(self.base, self.user["user"], self.user["group"])
        pwfile = self.base / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.user:
            os.chown(pwfile, self.user["user"], self.user["group"])
        self.port, self.host, self.password = _free_port(), "127.0.0.1", PASSWORD
        self._run([BIN / "initdb", "-D", self.base / "data", "-U", "berth", f"--pwfile={pwfile}", "-E", "UTF8",
                   "--auth=scram-sha-256", "--no-sync", "--no-instructions"])
        pwfile.unlink()
        self._run([BIN / "pg_ctl", "-D", self.base / "data", "-w", "-t", "60", "-l", self.base / "log", "start", "-o",
                   f"-h 127.0.0.1 -p {self.port} -k {self.base} -c fsync=off -c max_connections=40"])

    def _run(self, cmd):
        subprocess.run([str(c) for c in cmd], check=True, stdout=subprocess.DEVNULL, cwd=self.base, **self.user)

    def url(self, db: str = "postgres", user: str = "berth") -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{db}"

    def psql(self, sql: str, db: str = "postgres") -> list[list[str]]:
        """Rows of `sql` as lists of text (psql -At, tab-separated)."""
        out = subprocess.run([PSQL, "-X", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p",
                              str(self.port), "-U", "berth", "-d", db, "-c", sql], check=True, capture_output=True,
                             text=True, env=dict(os.environ, PGPASSWORD=self.password)).stdout
        return [line.split("\t") for line in out.splitlines()]

    def new_db(self) -> str:
        name = "t_" + uuid.uuid4().hex[:10]
        self.psql(f"CREATE DATABASE {name}")
        return name

    def stop(self):
        subprocess.run([str(BIN / "pg_ctl"), "-D", str(self.base / "data"), "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.base, **self.user)
        shutil.rmtree(self.base, ignore_errors=True)
