"""The Transport's file primitives over SFTP, safe from several threads. paramiko's SFTPClient is
not: two threads waiting at once each read the next reply, one takes the other's, and both wait for
ever (the console's worker and monitor stream threads did, at start-up). So one lock serialises the
connection's shared SFTP channel, every read on it has a timeout, and a channel that timed out is
dropped (its stream is mid-packet) and another opened at the next call. A file opened for writing
gets an SFTP channel of its own, so a long upload never holds the lock."""
from __future__ import annotations

import stat
import threading
from contextlib import contextmanager

import paramiko

from .errors import RemoteError

FILE_TIMEOUT = 60.0  # one SFTP request (or exec file call) unanswered this long fails the call


class SftpRefused(Exception):
    """The server has no SFTP subsystem (hardened sshd without `Subsystem sftp`)."""


def open_sftp(client: paramiko.Transport, timeout: float) -> paramiko.SFTPClient:
    """An SFTP client on a channel of its own whose reads give up after `timeout` seconds."""
    chan = client.open_session(timeout=timeout)
    chan.settimeout(timeout)
    try:
        chan.invoke_subsystem("sftp")
    except paramiko.SSHException:
        chan.close()
        if client.is_active():  # the request was refused, the connection is fine
            raise SftpRefused() from None
        raise
    try:
        return paramiko.SFTPClient(chan)
    except (paramiko.SSHException, EOFError):  # e.g. `Subsystem sftp` names a program that is not there
        chan.close()
        if client.is_active():
            raise SftpRefused() from None
        raise
    except BaseException:
        chan.close()
        raise


def timed_out(where: str, timeout: float) -> ConnectionError:
    return ConnectionError(f"{where} did not answer a file request within {timeout:g} s (server overloaded, "
                           f"or the link is stuck); try again, and check the server if it keeps happening")


class SftpFiles:
    kind = "sftp"

    def __init__(self, client: paramiko.Transport, where: str, timeout: float = FILE_TIMEOUT):
        self._client, self.where, self.timeout = client, where, timeout
        self._lock = threading.RLock()
        self._sftp: paramiko.SFTPClient | None = open_sftp(client, timeout)  # SftpRefused goes to the caller

    @contextmanager
    def _use(self):
        with self._lock:
            try:
                if self._sftp is None:
                    self._sftp = open_sftp(self._client, self.timeout)
                yield self._sftp
            except TimeoutError:
                self._drop()
                raise timed_out(self.where, self.timeout) from None

    def _drop(self) -> None:
        sftp, self._sftp = self._sftp, None
        if sftp is not None:
            try:
                sftp.close()
            except Exception:  # noqa: BLE001 - it is being thrown away because it is broken
                pass

    def home(self) -> str:
        with self._use() as sftp:
            return sftp.normalize(".")

    def exists(self, path: str) -> bool:
        with self._use() as sftp:
            try:
                sftp.stat(path)
                return True
            except FileNotFoundError:
                return False

    def mkdirs(self, path: str) -> None:
        with self._use() as sftp:
            current = ""
            for p in path.strip("/").split("/"):
                current += "/" + p
                try:
                    if not stat.S_ISDIR(sftp.stat(current).st_mode):
                        raise RemoteError(f"{current} exists on the server and is not a folder")
                except FileNotFoundError:
                    sftp.mkdir(current)

    def put(self, local, remote: str, progress=None) -> None:
        with self._use() as sftp:
            sftp.put(str(local), remote, callback=progress, confirm=True)

    def write_bytes(self, remote: str, data: bytes) -> None:
        with self._use() as sftp:
            with sftp.open(remote, "wb") as f:
                f.write(data)

    def chmod(self, path: str, mode: int) -> None:
        with self._use() as sftp:
            sftp.chmod(path, mode)

    def rename(self, src: str, dst: str) -> None:
        with self._use() as sftp:
            try:
                sftp.posix_rename(src, dst)
            except IOError as e:
                raise OSError(str(e)) from None

    def remove_tree(self, path: str) -> None:
        with self._use() as sftp:
            _remove_tree(sftp, path)

    def remove_file(self, path: str) -> None:
        with self._use() as sftp:
            try:
                sftp.remove(path)
            except FileNotFoundError:
                pass

    def open_write(self, remote: str, offset: int):
        """On an SFTP channel of its own (closed with the file): writes never wait for the lock."""
        sftp = open_sftp(self._client, self.timeout)
        try:
            f = open_at(sftp, remote, offset)
        except BaseException:
            sftp.close()
            raise
        return _OwnChannelFile(f, sftp, self.where, self.timeout)

    def close(self) -> None:
        with self._lock:
            self._drop()


def open_at(sftp: paramiko.SFTPClient, remote: str, offset: int):
    """`remote` for writing from `offset`: anything past it is dropped; created when offset is 0."""
    f = sftp.open(remote, "r+b" if offset else "wb")
    if offset:
        f.truncate(offset)
        f.seek(offset)
    return f


def _remove_tree(sftp: paramiko.SFTPClient, path: str) -> None:
    try:
        for entry in sftp.listdir_attr(path):
            child = f"{path}/{entry.filename}"
            if stat.S_ISDIR(entry.st_mode):
                _remove_tree(sftp, child)
            else:
                sftp.remove(child)
        sftp.rmdir(path)
    except FileNotFoundError:
        pass


class _OwnChannelFile:
    """An SFTPFile that closes its own SFTP channel with it; a stuck server is a ConnectionError."""

    def __init__(self, f, sftp, where: str, timeout: float):
        self._f, self._sftp, self._where, self._timeout = f, sftp, where, timeout

    def write(self, data: bytes) -> None:
        try:
            self._f.write(data)
        except TimeoutError:
            raise timed_out(self._where, self._timeout) from None

    def close(self) -> None:
        try:
            self._f.close()
        except TimeoutError:
            raise timed_out(self._where, self._timeout) from None
        finally:
            self._sftp.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
