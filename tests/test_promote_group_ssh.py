"""`berth promote MODEL --from S --server SEL --parallel N --max-failures K [--canary-first]` over two
real OpenSSH servers (tests/sshd.py): the exact release rolled as a group deploy, one target made to
fail for real (its root lies under a regular file), the budget and the canary honoured, one
`promote.group` audit operation naming each server's outcome; bad combinations refused first."""
import json
import shutil

import pytest

from agent_kit import stop_all
from cli_kit import berth, iris_copy


@pytest.fixture
def fleet(capsys, sshd, sshd_factory, tmp_path, berth_home):
    other = sshd_factory()
    roots = {"stg": (sshd, tmp_path / "stg"), "prd-1": (sshd, tmp_path / "prd-1"),
             "prd-2": (other, tmp_path / "a-file" / "root"), "prd-3": (other, tmp_path / "prd-3")}
    for name, (srv, root) in roots.items():
        r = berth(capsys, "server", "add", name, "--host", srv.host, "--port", srv.port, "--user", srv.user,
                  "--key", srv.key_path, "--root", str(root), "--env", "staging" if name == "stg" else "production",
                  "--accept-host-key", srv.fingerprint)
        assert r.code == 0, r
    shutil.rmtree(tmp_path / "a-file", ignore_errors=True)  # prd-2's root now lies under a regular file
    (tmp_path / "a-file").write_text("not a folder\n")
    yield
    for _srv, root in roots.values():
        if root.parent.is_dir():
            stop_all(root)


def current_sha(capsys, server):
    rows = berth(capsys, "releases", "iris", "--server", server, "--json").json()
    return next(r["sha256"] for r in rows if r["current"])


@pytest.mark.slow  # two sshd's, four servers, three real deploys: ~35 s
def test_a_group_promotion_stops_at_the_budget_and_a_second_one_goes_on(capsys, tmp_path, fleet):
    r = berth(capsys, "promote", "iris", "--from", "stg", "--server", "env:staging")
    assert r.code == 1 and "--server picks stg, the server promoted from" in r.err, r
    r = berth(capsys, "promote", "iris", "--from", "stg", "--to", "prd-1", "--parallel", "2")
    assert r.code == 1 and "go with --server" in r.err, r
    assert berth(capsys, "promote", "iris", "--from", "stg", "--to", "prd-1", "--server", "prd-1").code == 2
    assert berth(capsys, "promote", "iris", "--from", "nosuch", "--server", "prd-*").code == 1
    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "stg").code == 0
    sha = current_sha(capsys, "stg")

    r = berth(capsys, "promote", "iris", "--from", "stg", "--server", "env:production", "--parallel", "2",
              "--max-failures", "0", "--json")
    assert r.code == 1, r
    now = r.json()["now"]
    assert now["prd-1"].startswith("promoted 1.0.0") and now["prd-2"].startswith("failed: ") \
        and now["prd-3"] == "skipped: not started", now
    assert r.json()["stopped"] == "budget" and "[prd-1] now: promoted 1.0.0" in r.err
    assert current_sha(capsys, "prd-1") == sha

    r = berth(capsys, "promote", "iris", "--from", "stg", "--server", "prd-*", "--canary-first",
              "--max-failures", "1", "--json")
    assert r.code == 1, r  # prd-2 still fails; within the budget, so prd-3 is promoted
    now = r.json()["now"]
    assert now["prd-1"].startswith("unchanged") and now["prd-2"].startswith("failed: ") \
        and now["prd-3"].startswith("promoted 1.0.0"), now
    assert current_sha(capsys, "prd-3") == sha

    log = list(reversed(berth(capsys, "audit", "list", "--json", "--action", "promote.group").json()))
    assert [e["outcome"] for e in log] == ["started", "failed", "started", "failed"]
    assert (log[0]["model"], log[0]["version"], log[0]["sha256"]) == ("iris", "1.0.0", sha)
    facts = json.loads(log[3]["detail"])
    assert facts["from"] == "stg" and facts["servers"] == ["prd-1", "prd-2", "prd-3"] and facts["canary_first"]
    assert facts["outcomes"]["prd-3"].startswith("promoted 1.0.0") and facts["selectors"] == ["prd-*"]
