"""A throwaway keyring for the tests (tests/conftest.py puts a fresh one in place for each test) and
the benches (bench/jobs.py keeps its PostgreSQL password there, as `berth db-password` would)."""
from __future__ import annotations

import keyring.backend
import keyring.errors


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that lives in a dict, for tests only (never keyrings.alt)."""

    priority = 1

    def __init__(self):
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.passwords.get((service, username))

    def set_password(self, service, username, password):
        self.passwords[(service, username)] = password

    def delete_password(self, service, username):
        try:
            del self.passwords[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(f"no password for {username!r} at {service!r}") from None
