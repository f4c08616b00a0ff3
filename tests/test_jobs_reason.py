"""Job changes follow the production reason rule as deploys do: refused (and audited) before
connecting without a reason, and let through with one; job queries never need one."""
import pytest

from app.audit.query import query_events
from app.remote.errors import RemoteError
from app.store.servers import ServerConfig
from app.workspace import Workspace
from cli_kit import berth


@pytest.fixture
def ws():
    ws = Workspace()
    ws.servers.save(ServerConfig(name="prod1", kind="ssh", host="127.0.0.1", port=9, user="u", root="/srv",
                                 environment="production"))
    ws.set_setting("require_reason_production", "true")
    return ws


class Unreachable:
    name = "prod1"
    ssh_user = "u"


@pytest.mark.parametrize("action", ["add", "edit", "pause", "resume", "remove", "run"])
def test_each_job_change_needs_a_reason_on_production(ws, action):
    with pytest.raises(ValueError, match="give a reason"):
        ws.connect_to_change(f"job.{action}", "prod1")  # port 9: connecting would fail otherwise
    with pytest.raises(ValueError, match="give a reason"):
        ws.job_change(Unreachable(), action, "hourly", "iris")
    with pytest.raises(RemoteError):  # with a reason it goes on to connect
        ws.connect_to_change(f"job.{action}", "prod1", reason="CHG-7")
    assert [r["action"] for r in query_events(ws.db)].count("permission.denied") == 2


def test_the_cli_says_so_in_one_line_before_connecting(ws, capsys):
    r = berth(capsys, "job", "pause", "hourly", "--server", "prod1")
    assert r.code == 1 and r.err.strip().startswith("berth: prod1 is a production server: give a reason")
    r = berth(capsys, "job", "add", "hourly", "--model", "iris", "--server", "prod1", "--every", "1h",
              "--input-dir", "/in", "--output", "sqlite:////o.db", "--table", "t")
    assert r.code == 1 and "give a reason" in r.err and len(r.err.strip().splitlines()) == 1
    r = berth(capsys, "job", "list", "--server", "prod1")  # a query: it tries to connect, no reason asked
    assert r.code == 1 and "give a reason" not in r.err
