"""The Workspace owns "production needs a reason": deploy and rollback are refused (and audited)
before anything runs, start and stop never need one, and the refusal comes before connecting."""
import pytest

from app.audit.query import query_events
from app.remote.errors import RemoteError
from app.store.servers import ServerConfig
from app.workspace import Workspace


class Unreachable:
    name = "prod1"
    ssh_user = "u"


@pytest.fixture
def ws():
    ws = Workspace()
    ws.servers.save(ServerConfig(name="prod1", kind="ssh", host="127.0.0.1", port=9, user="u", root="/srv",
                                 environment="production"))
    ws.set_setting("require_reason_production", "true")
    return ws


def denied(ws):
    return [r for r in query_events(ws.db) if r["action"] == "permission.denied"]


def test_deploy_and_rollback_need_a_reason_on_production(ws, tmp_path):
    with pytest.raises(ValueError, match="give a reason"):
        ws.deploy(Unreachable(), tmp_path)
    with pytest.raises(ValueError, match="give a reason"):
        next(ws.change(Unreachable(), "rollback", "iris", reason=" "))
    assert len(denied(ws)) == 2
    assert ws.deploy(Unreachable(), tmp_path, reason="CHG-1").trail.facts["reason"] == "CHG-1"


def test_start_and_stop_never_need_one(ws):
    for action in ("start", "stop"):
        with pytest.raises(RemoteError):  # it went on to connect (port 9: nobody there)
            ws.connect_to_change(action, "prod1")
    assert denied(ws) == []


def test_the_refusal_comes_before_connecting(ws):
    with pytest.raises(ValueError, match="give a reason"):
        ws.connect_to_change("deploy", "prod1")  # port 9: a connection would fail otherwise
    assert len(denied(ws)) == 1
    assert [r["action"] for r in query_events(ws.db) if r["outcome"] == "failed"] == ["permission.denied"]
