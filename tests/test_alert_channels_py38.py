"""Both alert channels run by a real Python 3.8 from an installed agent's layout, as the evaluator
runs them on an old server: STARTTLS + AUTH to a real relay, and a post to a real Alertmanager."""
import datetime
import json
import shutil
import subprocess
from pathlib import Path

import pytest

try:
    from .agent_kit import call  # type: ignore[import-not-found]
    from .mail_kit import Alertmanager, Relay, RelayCA, require_alertmanager  # type: ignore[import-not-found]
    from .test_agent_py38 import _python38  # type: ignore[import-not-found]
except ImportError:
    from agent_kit import call
    from mail_kit import Alertmanager, Relay, RelayCA, require_alertmanager
    from test_agent_py38 import _python38

AGENT = Path(__file__).resolve().parent.parent / "app" / "agent"
NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=500000)
SINCE = (NOW - datetime.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S.5Z")
PAYLOAD = {"version": "berth-alert/1", "status": "firing", "group": "old/iris", "server": "old",
           "sent": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
           "alerts": [{"rule": "slow", "model": "iris", "expr": "p95_ms>200", "state": "firing",
                       "since": SINCE, "value": 250.5, "summary": "slow"}]}
SEND = """import json, sys
sys.path.insert(0, sys.argv[1])
from berth_agent import alertmail, alertmanager_send
req = json.load(sys.stdin)
module = alertmail if req["channel"]["kind"] == "email" else alertmanager_send
print(json.dumps(module.send(req["channel"], req["payload"], 10)))
"""


@pytest.fixture
def installed(tmp_path):
    """A root with the agent's files where Berth installs them; -> (root, the agent's folder)."""
    python = _python38()
    if python is None:
        pytest.skip("no Python 3.8 interpreter on this machine (pyenv 3.8 has one)")
    folder = tmp_path / "root" / ".berth" / "agent" / "test"
    shutil.copytree(AGENT, folder / "berth_agent", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "root", folder, python


def send_with_38(python, folder, channel):
    r = subprocess.run([python, "-I", "-B", "-c", SEND, str(folder)], input=json.dumps(
        {"channel": channel, "payload": PAYLOAD}), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_mail_from_python38_finds_its_root_and_delivers(installed, tmp_path):
    root, folder, python = installed
    ca = RelayCA(tmp_path)
    with Relay(ca, "starttls", "alerts", "pw-38") as relay:
        assert call(root, "alert_smtp_set", host="127.0.0.1", port=relay.port, user="alerts", password="pw-38",
                    ca_pem=ca.ca_pem, **{"from": "berth@example.com"})[1] is None
        sent = send_with_38(python, folder, {"kind": "email", "to": "ops@example.com"})  # no root given
    assert sent["ok"] and sent["status"] == "250", sent
    assert relay.mails[0]["message"]["Subject"] == "[Berth] FIRING p95_ms>200 on old/iris"


def test_alertmanager_from_python38(installed, tmp_path):
    require_alertmanager()
    _root, folder, python = installed
    with Alertmanager(tmp_path / "am") as am:
        sent = send_with_38(python, folder, {"kind": "alertmanager", "url": am.url})
        assert sent["ok"], sent
        (alert,) = [a for a in am.alerts() if a["labels"].get("server") == "old"]
    assert alert["labels"]["berth_rule"] == "slow" and alert["startsAt"].startswith(SINCE[:-1])
