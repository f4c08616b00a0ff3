"""A model with two releases on a temporary root for the experiment tests: 1.0.0 (A, current)
and 2.0.0 (B), whose model fails on {"fail": 1}, dies on {"crash": 1} and answers {"n": N} with
N + 0.5 where A answers N; and a keep-alive client that counts who answered."""
from __future__ import annotations

import http.client
import json

from agent_kit import call, deploy, make_bundle

MODEL = '''
import os


class Model:
    def __init__(self):
        self.version = "{version}"

    def predict(self, data):
        b = self.version != "1.0.0"
        if isinstance(data, dict) and b and data.get("fail"):
            raise ValueError("B fails on purpose")
        if isinstance(data, dict) and b and data.get("crash"):
            os._exit(3)
        if isinstance(data, dict) and "n" in data:
            return {{"y": data["n"] + (0.5 if b else 0)}}
        return {{"version": self.version, "echo": data}}
'''


def two_releases(root, tmp):
    for version in ("1.0.0", "2.0.0"):
        result, error, _ = deploy(root, make_bundle(tmp / version, version=version,
                                                    model_src=MODEL.format(version=version)))
        assert error is None, error
    assert call(root, "rollback", model="echo", to="1.0.0")[1] is None


OPEN: list = []  # every Client, closed by close_all() at a test's end


def close_all():
    while OPEN:
        OPEN.pop().close()


def stop_routers(root):
    """Test teardown: no router outlives its test (agent_kit.stop_all stops the runners)."""
    from app.agent import experimentend
    from app.agent.layout import Root

    r = Root(str(root))
    for name in r.model_names():
        experimentend.stop_router(r.model(name))


class Client:
    """One keep-alive connection to the stable port."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        OPEN.append(self)

    def predict(self, body, headers=None):
        """(status, X-Berth-Version, X-Request-Id, body); an idle connection the server closed (as
        one does when an experiment ends) is opened again once, as HTTP clients do."""
        try:
            return self._predict(body, headers)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self.conn.close()
            return self._predict(body, headers)

    def _predict(self, body, headers):
        self.conn.request("POST", "/predict", body=json.dumps(body).encode(),
                          headers=dict({"Content-Type": "application/json"}, **(headers or {})))
        r = self.conn.getresponse()
        raw = r.read()
        if r.will_close:
            self.conn.close()
        return r.status, r.getheader("X-Berth-Version"), r.getheader("X-Request-Id"), raw

    def close(self):
        self.conn.close()
