"""The server journal's own hash chain, the ids the desktop gives the agent, and reading it in parts."""
import json

import pytest

from agent_kit import call, deploy_request, make_bundle, stop_all
from app.agent import journal
from app.agent.layout import Root


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "root"
    yield path
    stop_all(path)


def lines(root):
    return [json.loads(line) for line in (root / "journal.jsonl").read_text().splitlines()]


def test_deploy_journals_a_chain_with_the_desktops_ids(root, tmp_path):
    ids = {"started": "a" * 32, "outcome": "b" * 32, "rollback_auto": "c" * 32}
    result, error, _ = call(root, "deploy", event_ids=ids, reason="first",
                            **deploy_request(root, make_bundle(tmp_path / "b1")))
    assert error is None, error
    call(root, "deploy", event_ids={"started": "not hex!"}, **deploy_request(root, make_bundle(tmp_path / "b2",
                                                                                                  version="2.0.0")))
    events = lines(root)
    assert [(e["id"], e["outcome"]) for e in events[:2]] == [("a" * 32, "started"), ("b" * 32, "ok")]
    assert events[1]["ref"] == "a" * 32 and events[1]["reason"] == "first" and events[1]["new"] == "1.0.0"
    assert len(events[2]["id"]) == 32 and events[2]["id"] != "not hex!"  # a bad id is replaced, not trusted
    assert (events[3]["old"], events[3]["new"]) == ("1.0.0", "2.0.0")
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert journal.verify(events) == (True, 4, "")


def test_edits_removals_and_moves_break_the_chain(root, tmp_path):
    for v in ("1.0.0", "1.1.0"):
        call(root, "deploy", **deploy_request(root, make_bundle(tmp_path / v, version=v)))
    events = lines(root)
    edited = [dict(e) for e in events]
    edited[2]["detail"] = "quiet"
    assert journal.verify(edited)[:2] == (False, 2) and "changed" in journal.verify(edited)[2]
    assert journal.verify(events[:1] + events[2:])[:2] == (False, 1)
    assert journal.verify([events[1], events[0]] + events[2:])[0] is False
    assert journal.verify(events[2:], events[1]["hash"], 2) == (True, 2, "")  # continuing from a cursor
    assert journal.verify(events + [{"unreadable": "garbage"}])[0] is False


def test_read_after_an_id_in_parts(root, tmp_path):
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        call(root, "deploy", **deploy_request(root, make_bundle(tmp_path / v, version=v)))
    everything = lines(root)
    part, _, _ = call(root, "journal", limit=4)
    assert [e["id"] for e in part["events"]] == [e["id"] for e in everything[:4]] and part["more"]
    rest, _, _ = call(root, "journal", after=part["events"][-1]["id"])
    assert [e["id"] for e in rest["events"]] == [e["id"] for e in everything[4:]] and not rest["more"]
    assert rest["head"] == {"seq": 6, "hash": everything[-1]["hash"]}
    _, error, _ = call(root, "journal", limit=0)
    assert error["code"] == "usage"
    status, _, _ = call(root, "status")
    assert status["journal_head"]["seq"] == 6


def test_a_journal_from_before_the_chain_is_continued(root, tmp_path):
    root.mkdir(parents=True)
    (root / "journal.jsonl").write_text(json.dumps({"id": "old1", "ts": "2024-01-01T00:00:00Z", "action": "deploy",
                                                    "outcome": "ok"}) + "\n")
    head = journal.head(Root(str(root)))
    assert head["seq"] == 0 and head["hash"].startswith("unchained-")
    call(root, "deploy", **deploy_request(root, make_bundle(tmp_path / "b")))
    events = lines(root)
    assert events[1]["seq"] == 1 and events[1]["prev"] == journal.GENESIS
    assert journal.verify(events) == (True, 3, "")
