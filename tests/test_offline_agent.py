"""The agent's side of offline installs, without a server: platform tags, the wheel list a deploy
request may carry, a private index's URL and the scrubbing of its password from pip's output."""
import pytest

from app.agent import serverfacts, wheelhouse
from app.agent.layout import AgentError

SHA = "a" * 64


def test_glibc_tags_go_from_the_newest_down_to_manylinux2014_then_linux():
    tags = serverfacts.platform_tags("glibc", "2.36", "x86_64")
    assert tags[0] == "manylinux_2_36_x86_64" and "manylinux_2_17_x86_64" in tags
    assert tags[-4:] == ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"]


def test_musl_and_unknown_libcs():
    assert serverfacts.platform_tags("musl", "1.2", "aarch64") == [
        "musllinux_1_2_aarch64", "musllinux_1_1_aarch64", "linux_aarch64"]
    assert serverfacts.platform_tags("", "", "x86_64") == ["linux_x86_64"]


def test_this_machine_has_facts_and_an_unreachable_index_is_said():
    facts = serverfacts.platform_facts()
    assert facts["abi"].startswith("cp") and facts["platforms"]
    reach = serverfacts.index_reach("http://user:pw@127.0.0.1:9/simple/", timeout=1)
    assert reach["reachable"] is False and reach["url"] == "http://127.0.0.1:9/simple/"


def test_the_configured_index_is_the_environment_s_first():
    assert serverfacts.configured_index({"PIP_INDEX_URL": "http://i.example/simple", "HOME": "/nonexistent"}) \
        == "http://i.example/simple"


@pytest.mark.parametrize("wheel", [
    {"name": "../evil-1.0-py3-none-any.whl", "sha256": SHA},
    {"name": "x/evil-1.0-py3-none-any.whl", "sha256": SHA},
    {"name": "evil-1.0.tar.gz", "sha256": SHA},
    {"name": "evil-1.0-py3-none-any.whl", "sha256": "../" + SHA[3:]},
    "evil-1.0-py3-none-any.whl",
])
def test_a_bad_wheel_in_a_request_is_refused(wheel):
    with pytest.raises(AgentError) as e:
        wheelhouse.source_of({"index": "offline", "wheels": [wheel]})
    assert e.value.code == "usage"


def test_a_private_index_gets_its_password_in_pip_s_environment_only_and_scrubbed():
    source = wheelhouse.source_of({"index": {"url": "https://ci@pkgs.example/simple/"}, "index_password": "p@ss/w"})
    assert source.args == [] and source.env == {"PIP_INDEX_URL": "https://ci:p%40ss%2Fw@pkgs.example/simple/"}
    assert source.scrub("GET https://ci:p%40ss%2Fw@pkgs.example/ said p@ss/w") == \
        "GET https://ci:****@pkgs.example/ said ****"
    with pytest.raises(AgentError):
        wheelhouse.source_of({"index": {"url": "https://pkgs.example/simple/"}, "index_password": "pw"})
    with pytest.raises(AgentError):
        wheelhouse.source_of({"index": {"url": "file:///etc"}})
    with pytest.raises(AgentError):
        wheelhouse.source_of({"index": "somewhere"})
    assert wheelhouse.source_of({}) is None
