"""`berth export kubernetes MODEL --server S -o DIR`: read one container release and its image's
facts from the server, and write the Deployment and Service (kubernetes.py) as plain YAML files that
`kubectl apply -f DIR` takes. Everything the operator typed is checked before the server is asked,
and nothing is written unless every check passed."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from app import errors
from app.agent.containerengine import IMAGE_RE, check_image
from app.agent.layout import AgentError, check_name, check_version
from app.audit.actor import local_actor_label

from . import kubernetes, kubeyaml, queries
from .errors import OperationFailed

FILES = ("deployment.yaml", "service.yaml")
KUBERNETES_VERSION = "1.30"  # the schemas the tests validate against (tests/test_kube_export.py)


def check_request(model: str, version: str | None, out: Path, force: bool, registry: str | None) -> None:
    """Refuse bad input before connecting: names, the output folder, the registry prefix."""
    try:
        check_name(model)
        if version is not None:
            check_version(version)
    except AgentError as e:
        raise OperationFailed(f"{e}: a model name is lowercase letters, digits and -; a version letters, digits "
                              f"and ._+-", code=errors.USAGE) from None
    if registry is not None and not (IMAGE_RE.fullmatch(registry.rstrip("/") + "/berth/x:1") and registry.strip()):
        raise OperationFailed(f"--registry {registry!r} is not a registry prefix such as registry.example.com:5000/team",
                              code=errors.USAGE)
    if out.exists() and not out.is_dir():
        raise OperationFailed(f"-o {out} is a file, not a folder: name a folder for the manifests", code=errors.USAGE)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OperationFailed(f"-o {out} is not empty: name a new or empty folder, or give --force to write "
                              f"{' and '.join(FILES)} into it (other files there stay, and kubectl applies them too)",
                              code=errors.USAGE)


def pick_release(transport, model: str, version: str | None) -> dict:
    rows = queries.releases(transport, model)
    if not rows:
        raise queries.not_deployed(transport, model)
    if version is None:
        row = next((r for r in rows if r["current"]), None)
        if row is None:
            raise OperationFailed(f"{model} has no current release on {transport.name}: give --version "
                                  f"({', '.join(r['version'] for r in rows)})", code="not_found")
        return row
    row = next((r for r in rows if r["version"] == version), None)
    if row is None:
        raise OperationFailed(f"there is no release {version} of {model} on {transport.name} (releases: "
                              f"{', '.join(r['version'] for r in rows)})", code="not_found")
    return row


def image_of(transport, row: dict) -> dict:
    """The image facts, or why this release cannot be exported (a venv release has no image)."""
    model, version = row["manifest"]["name"], row["version"]
    if (row.get("manifest") or {}).get("runtime") != "container":
        raise OperationFailed(
            f"{model} {version} runs in a virtualenv on {transport.name}: it has no image to export. Set "
            f"[serve] runtime = \"container\" in its berth.toml and deploy it again under a new version (the server "
            f"builds berth/{model}:<version>; docs/containers.md), then export that version", code=errors.USAGE)
    facts = transport.agent("image_facts", {"model": model, "version": version})
    if not facts.get("exists"):
        raise OperationFailed(f"the image {facts.get('image')} of {model} {version} is not on {transport.name} "
                              f"({facts.get('detail')}): deploy the release again (the server rebuilds it), then "
                              f"export it", code="not_found")
    built_from = (facts.get("labels") or {}).get("berth.bundle.sha256")
    if built_from != row.get("sha256"):
        raise OperationFailed(f"the image {facts['image']} on {transport.name} was built from other content "
                              f"({(built_from or 'no berth label')[:12]}, the release is {(row.get('sha256') or '?')[:12]}): "
                              f"deploy the release again so the server rebuilds it", code="image_mismatch")
    return facts


def export(transport, model: str, version: str | None, out: Path, *, force: bool = False, replicas: int = 2,
           registry: str | None = None) -> dict:
    check_request(model, version, out, force, registry)
    row = pick_release(transport, model, version)
    facts = image_of(transport, row)
    local = facts["image"]
    image = check_image(f"{registry.rstrip('/')}/{local}", "image") if registry else local
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    docs = kubernetes.manifests(row, image, image_user=facts.get("user") or "", settings=facts.get("settings"),
                                replicas=replicas, server=transport.name, exported_by=local_actor_label(),
                                exported_at=now)
    header = (f"{model} {row['version']} exported by berth from {transport.name} at {now} "
              f"(Kubernetes {KUBERNETES_VERSION} schemas)\nimage: {image}; next: docs/containers.md, \"Kubernetes\"")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in zip(FILES, docs):
        path = out / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(kubeyaml.dump_all([doc], header))
        os.replace(tmp, path)
        written.append(str(path))
    return {"model": model, "version": row["version"], "server": transport.name, "image": image,
            "local_image": local, "engine": facts.get("engine"), "image_size": facts.get("size"),
            "files": written, "next": next_steps(transport.name, local, image, out)}


def next_steps(server: str, local: str, image: str, out: Path) -> list[str]:
    steps = []
    if image != local:
        steps.append(f"on {server}: docker tag {local} {image} && docker push {image}   (podman: the same)")
    else:
        steps.append(f"on {server}: docker tag {local} REGISTRY/{local} && docker push REGISTRY/{local}, and "
                     f"export again with --registry REGISTRY (or docker save {local} | gzip > image.tar.gz, and load "
                     f"it on the cluster's nodes)")
    steps.append(f"kubectl apply -f {out}")
    return steps
