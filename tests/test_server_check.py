"""Testing or saving a server with a secret just typed (app/remote/server_check.py): the secret is in
the keyring while the check connects; a failed check puts back what was there, a passed one keeps
the new. Plain pytest, the in-memory keyring of conftest.py, a workspace that only answers."""
import pytest

from app.remote.errors import RemoteError
from app.remote.server_check import KEEP, SAVE, TEST, SecretChanges, check_server, secret_changes
from app.store.servers import ServerConfig

ACCOUNT = ("berth", "password:box")


class Answering:
    """A workspace whose test / save connect nowhere: each records the password the keyring held at
    that moment (what a real transport would have logged in with), then passes or raises `error`."""

    def __init__(self, memory_keyring, error: BaseException | None = None):
        self.keyring, self.error, self.seen = memory_keyring, error, []

    def _check(self, config):
        self.seen.append(self.keyring.passwords.get(("berth", f"password:{config.name}")))
        if self.error is not None:
            raise self.error
        return {"root": "/srv/berth", "python": "3.12.1"}

    def test_server(self, config, accept):
        return self._check(config)

    def save_server(self, config, accept, replacing=None):
        return self._check(config)


def box(name="box", auth="password") -> ServerConfig:
    return ServerConfig(name=name, host="10.0.0.5", user="ops", root="~/berth", auth=auth)


@pytest.mark.parametrize("mode", [TEST, SAVE])
def test_a_failed_check_restores_the_previous_secret(memory_keyring, mode):
    memory_keyring.passwords[ACCOUNT] = "old-working-pw"
    ws = Answering(memory_keyring, RemoteError("password: refused"))
    with pytest.raises(RemoteError):
        check_server(ws, mode, box(), None, secret_changes(box(), box(), password="typo-pw"))
    assert ws.seen == ["typo-pw"]  # the check logged in with the new one
    assert memory_keyring.passwords[ACCOUNT] == "old-working-pw"


def test_a_failed_check_of_a_new_server_leaves_no_secret(memory_keyring):
    ws = Answering(memory_keyring, RemoteError("password: refused"))
    with pytest.raises(RemoteError):
        check_server(ws, SAVE, box(), None, secret_changes(box(), None, password="new-pw"))
    assert ACCOUNT not in memory_keyring.passwords


@pytest.mark.parametrize("mode", [TEST, SAVE])
def test_a_passed_check_keeps_the_new_secret(memory_keyring, mode):
    memory_keyring.passwords[ACCOUNT] = "old-pw"
    ws = Answering(memory_keyring)
    info = check_server(ws, mode, box(), None, secret_changes(box(), box(), password="new-pw"))
    assert info["root"] == "/srv/berth" and ws.seen == ["new-pw"]
    assert memory_keyring.passwords[ACCOUNT] == "new-pw"


def test_a_renamed_server_takes_its_stored_password_along(memory_keyring):
    memory_keyring.passwords[ACCOUNT] = "stored-pw"
    changes = secret_changes(box("box-2"), box(), password="")
    assert changes.put == {"password:box-2": KEEP} and changes.drop == ("password:box",)
    ws = Answering(memory_keyring)
    check_server(ws, SAVE, box("box-2"), None, changes, replacing="box")
    assert ws.seen == ["stored-pw"]
    assert memory_keyring.passwords == {("berth", "password:box-2"): "stored-pw"}


def test_a_test_drops_nothing_and_a_missing_password_to_keep_is_said(memory_keyring):
    memory_keyring.passwords[ACCOUNT] = "stored-pw"
    check_server(Answering(memory_keyring), TEST, box("box-2"), None, secret_changes(box("box-2"), box()))
    assert memory_keyring.passwords[ACCOUNT] == "stored-pw"  # only a save makes it stale
    del memory_keyring.passwords[ACCOUNT]
    with pytest.raises(ValueError, match="no password is stored"):
        check_server(Answering(memory_keyring), SAVE, box("box-3"), None, secret_changes(box("box-3"), box()))


def test_secrets_stay_out_of_the_repr_and_say_their_kind():
    changes = secret_changes(ServerConfig(name="k", host="h", user="u", key_path="/keys/id", auth="password"), None,
                             password="pw-secret-1", passphrase="pp-secret-2")
    assert changes.kinds() == {"password", "key passphrase"}
    assert "secret" not in repr(changes)
    assert SecretChanges().kinds() == set()
