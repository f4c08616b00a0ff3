"""`berth export kubernetes`: the manifests against the official Kubernetes schemas (the
kubernetes-validate package, offline), the YAML writer read back by PyYAML, bad input refused before
anything is written, and, marked slow, the whole way for real: a container release built by podman
on `local`, exported, and run with `podman kube play` until the model answers a prediction."""
from __future__ import annotations

import json
import socket
import time
import urllib.request

import kubernetes_validate
import pytest
import yaml

from agent_kit import deploy as agent_deploy, make_bundle
from app.deploy import kubernetes, kubeyaml
from app.deploy.kubeexport import KUBERNETES_VERSION
from cli_kit import berth

SCHEMAS = f"{KUBERNETES_VERSION}.0"
SHA = "ab" * 32


def release(version="1.0.0", **manifest) -> dict:
    """A row as the agent's `releases` answers it."""
    m = {"name": "fraud-model", "version": version, "entrypoint": "model:Model", "runtime": "container", **manifest}
    return {"version": version, "current": True, "sha256": SHA, "deployed_at": "2026-12-01T10:00:00+00:00",
            "deployed_by": {"user": "ana", "host": "laptop", "ssh_user": "deploy"}, "manifest": m, "profile": None}


def validated(docs: list[dict]) -> list[dict]:
    """Written by our YAML writer, read back by PyYAML, checked strictly against the schemas."""
    text = kubeyaml.dump_all(docs, "a header\nof two lines")
    back = list(yaml.safe_load_all(text))
    assert back == docs
    for doc in back:
        kubernetes_validate.validate(doc, SCHEMAS, strict=True)
    return back


def container(docs):
    return docs[0]["spec"]["template"]["spec"]["containers"][0]


def test_the_manifests_pass_the_official_schemas_with_limits_from_bundle_profile_or_server():
    row = release("2.1.0+cpu", memory="512m", cpus=1.5, description="scores: \"on\"\nnull", authors=["Ana", "Bo"],
                  env={"MODE": "fast", "LD_PRELOAD": "x.so"}, training={"metrics": {"auc": 0.91}},
                  health_timeout_s=90)
    docs = validated(kubernetes.manifests(row, "registry.example.com:5000/team/berth/fraud-model:2.1.0_cpu",
                                          settings={"memory": "2g"}, replicas=3, server="box",
                                          exported_by="ana@laptop", exported_at="2026-12-02T01:00:00Z"))
    deployment, service = docs
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    assert deployment["spec"]["replicas"] == 3
    c = container(docs)
    assert c["resources"] == {"limits": {"memory": "512Mi", "cpu": "1500m"},  # the bundle's win over the server's
                              "requests": {"cpu": "1500m", "memory": "512Mi"}}
    assert c["env"] == [{"name": "MODE", "value": "fast"}]  # LD_* is the runner's, as under Berth
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 90
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"} == c["livenessProbe"]["httpGet"]
    assert c["securityContext"] == {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                    "privileged": False, "capabilities": {"drop": ["ALL"]}}
    meta = deployment["metadata"]
    assert meta["labels"]["app.kubernetes.io/version"] == "2.1.0_cpu"  # a label value has no '+'
    notes = meta["annotations"]
    assert notes["berth/bundle-sha256"] == SHA and notes["berth/version"] == "2.1.0+cpu"
    assert notes["berth/deployed-by"] == "ana@laptop" and notes["berth/exported-from"] == "box"
    assert notes["berth/description"] == "scores: \"on\"\nnull" and notes["berth/training-metrics"] == "auc=0.91"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"

    # the server's limits when the bundle has none; the memory request from the profile (peak x 1.5, under the limit)
    row = dict(release(), profile={"rss_peak_bytes": 100 * 1024 * 1024})
    c = container(validated(kubernetes.manifests(row, "berth/fraud-model:1.0.0", settings={"memory": "1g",
                                                                                        "cpus": 0.25})))
    assert c["resources"] == {"limits": {"memory": "1Gi", "cpu": "250m"},
                              "requests": {"cpu": "250m", "memory": "150Mi"}}
    # nothing known: no resources at all (the cluster's defaults), still valid
    assert "resources" not in container(validated(kubernetes.manifests(release(), "berth/fraud-model:1.0.0")))
    # an image that runs as a numeric non-root user gets runAsNonRoot; a named user cannot be checked by the kubelet
    c = container(validated(kubernetes.manifests(release(), "berth/fraud-model:1.0.0", image_user="1000:1000")))
    assert c["securityContext"]["runAsNonRoot"] is True and c["securityContext"]["runAsUser"] == 1000
    assert "runAsNonRoot" not in container(kubernetes.manifests(release(), "x:1", image_user="app"))["securityContext"]


@pytest.mark.parametrize("text", ["on", "1.10", "null", "~", "a: b # c", "- x", "é 😀 \x85 \u2028 \ufeff \x00 \t",
                                  "'\"\\", ""])
def test_the_yaml_writer_keeps_every_string_a_string(text):
    doc = {"k": text, text or "empty": [text, {"n": 1, "t": True, "none": None, "e": {}, "l": []}]}
    assert yaml.safe_load(kubeyaml.dump_all([doc])[4:]) == doc


def test_sizes_become_kubernetes_quantities():
    assert [kubernetes.quantity(s) for s in ("512m", "2G", "1000k", "1048576")] == ["512Mi", "2Gi", "1000Ki",
                                                                                     "1048576"]
    with pytest.raises(ValueError):
        kubernetes.quantity("5 TB")
    assert kubernetes.label_value("1.0.0+cpu") == "1.0.0_cpu" and kubernetes.label_value("+") == ""


@pytest.mark.parametrize("argv, said", [
    (["fraud;rm -rf /"], "invalid model name"),
    (["Fraud"], "invalid model name"),
    (["echo", "--version", "1.0$(id)"], "invalid version"),
    (["echo", "--version", "../1"], "invalid version"),
    (["echo", "--registry", "reg.example.com/team;id"], "not a registry prefix"),
])
def test_bad_names_are_refused_before_connecting(capsys, tmp_path, argv, said):
    r = berth(capsys, "export", "kubernetes", *argv, "--server", "local", "-o", tmp_path / "out")
    assert r.code == 1 and said in r.err and r.out == "", r
    assert not (tmp_path / "out").exists()


def test_the_output_must_be_a_new_or_empty_folder_unless_forced(capsys, tmp_path):
    a_file = tmp_path / "manifests.yaml"
    a_file.write_text("kind: Secret\n")
    r = berth(capsys, "export", "kubernetes", "echo", "--server", "local", "-o", a_file)
    assert r.code == 1 and "is a file, not a folder" in r.err, r
    r = berth(capsys, "export", "kubernetes", "echo", "--server", "local", "-o", tmp_path)
    assert r.code == 1 and "is not empty" in r.err and "--force" in r.err, r
    assert a_file.read_text() == "kind: Secret\n"


def test_a_venv_release_an_unknown_model_or_version_is_refused(capsys, tmp_path, stop_local_runners):
    out = tmp_path / "out"
    _, error, _ = agent_deploy(stop_local_runners, make_bundle(tmp_path / "b"))  # in-process: the CLI's is tested
    assert error is None, error
    r = berth(capsys, "export", "kubernetes", "echp", "--server", "local", "-o", out)
    assert r.code == 1 and "did you mean echo?" in r.err, r
    r = berth(capsys, "export", "kubernetes", "echo", "--server", "local", "--version", "9.9", "-o", out)
    assert r.code == 1 and "no release 9.9 of echo on local (releases: 1.0.0)" in r.err, r
    r = berth(capsys, "export", "kubernetes", "echo", "--server", "local", "-o", out)
    assert r.code == 1 and "runs in a virtualenv" in r.err and 'runtime = "container"' in r.err, r
    assert not out.exists()


# ---- for real: podman builds the release's image on `local`, `podman kube play` runs the export ----

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def predict(port: int, data) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/predict", json.dumps(data).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def podman():
    from kube_kit import Podman, missing

    if missing():
        pytest.skip(missing())
    engine = Podman()
    try:
        yield engine.start()
    finally:
        engine.stop()


@pytest.mark.slow
def test_the_export_runs_with_podman_kube_play_and_answers(capsys, tmp_path, podman, stop_local_runners):
    from container_kit import BASE_IMAGE

    r = berth(capsys, "server", "set-container", "local", "--engine", podman.wrapper, "--base-image", BASE_IMAGE,
              "--build-network", "none")
    assert r.code == 0, r
    folder = make_bundle(tmp_path / "b", version="1.0.0+cpu",
                         extra_toml='runtime = "container"\nmemory = "256m"\ncpus = 0.5\n')
    r = berth(capsys, "deploy", folder, "--server", "local")
    assert r.code == 0, r

    out = tmp_path / "k8s"
    r = berth(capsys, "export", "kubernetes", "echo", "--server", "local", "-o", out, "--replicas", "1", "--json")
    assert r.code == 0, r
    result = r.json()
    assert result["image"] == "berth/echo:1.0.0_cpu" and result["engine"] == "podman"
    assert sorted(p.name for p in out.iterdir()) == ["deployment.yaml", "service.yaml"]
    assert result["next"][-1] == f"kubectl apply -f {out}"
    docs = [doc for p in sorted(out.iterdir()) for doc in yaml.safe_load_all(p.read_text())]
    for doc in docs:
        kubernetes_validate.validate(doc, SCHEMAS, strict=True)
    deployment = docs[0]
    labels = json.loads(podman.cli("image", "inspect", "--format", "{{json .Labels}}", result["image"]).stdout)
    assert deployment["metadata"]["annotations"]["berth/bundle-sha256"] == labels["berth.bundle.sha256"]

    (out / "service.yaml").write_text("kind: Secret\n")
    r = berth(capsys, "export", "kubernetes", "echo", "--server", "local", "-o", out, "--replicas", "1", "--force")
    assert r.code == 0 and "kubectl apply -f" in r.out, r
    assert yaml.safe_load((out / "service.yaml").read_text())["kind"] == "Service"

    # a cluster reaches the pod through the Service; podman on one machine through a host port on loopback
    port = free_port()
    c = deployment["spec"]["template"]["spec"]["containers"][0]
    c["ports"][0].update(hostPort=port, hostIP="127.0.0.1")
    play = tmp_path / "play.yaml"
    play.write_text(kubeyaml.dump_all([deployment]))
    played = podman.cli("kube", "play", "--network", podman.net, str(play), check=False, timeout=120)
    try:
        assert played.returncode == 0, played.stderr[-2000:]
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = predict(port, {"x": 7})
                break
            except OSError:
                assert time.monotonic() < deadline, podman.cli("pod", "logs", "echo-pod-0", check=False).stdout
                time.sleep(0.3)
        assert answer == {"version": "1.0.0+cpu", "echo": {"x": 7}}
        host = json.loads(podman.cli("inspect", "--format", "{{json .HostConfig}}", "echo-pod-0-model").stdout)
        assert host["ReadonlyRootfs"] and host["Memory"] == 256 * 1024 * 1024 and host["NanoCpus"] == 500_000_000
        assert "no-new-privileges" in host["SecurityOpt"]
    finally:
        podman.cli("kube", "down", str(play), check=False, timeout=120)

    # the image gone, or another image under its name: refused, nothing written
    podman.cli("rmi", "--force", result["image"])
    podman.cli("tag", BASE_IMAGE, result["image"])
    r = berth(capsys, "export", "kubernetes", "echo", "--server", "local", "-o", tmp_path / "again")
    assert r.code == 1 and "was built from other content" in r.err, r
    podman.cli("rmi", result["image"])
    r = berth(capsys, "export", "kubernetes", "echo", "--server", "local", "-o", tmp_path / "again")
    assert r.code == 1 and "is not on local" in r.err and "deploy the release again" in r.err, r
    assert not (tmp_path / "again").exists()
