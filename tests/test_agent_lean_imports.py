"""The agent starts for every command that does not ride a session: what it imports is paid each time.
The alert modules (smtplib, ssl, email, urllib) are imported only by the commands and the process that use them."""
import importlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("ssl", "smtplib", "email.message", "urllib.request", "http.client", "app.agent.alerts", "app.agent.alerteval")


def test_the_agent_imports_no_mail_tls_or_http_client():
    code = ("import sys, json; sys.path.insert(0, %r); import app.agent.main; "
            "print(json.dumps([m for m in %r if m in sys.modules]))" % (str(ROOT), HEAVY))
    out = subprocess.run([sys.executable, "-I", "-B", "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_every_lazy_command_is_the_modules_own():
    from app.agent import main
    for module, names in main.LAZY.items():
        mod = importlib.import_module("app.agent." + module)
        assert sorted(names) == sorted(mod.COMMANDS), module
        assert all(main.COMMANDS[n].__name__ == n for n in names)
