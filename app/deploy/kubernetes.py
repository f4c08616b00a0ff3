"""`berth export kubernetes`: a container release as the Deployment and Service a cluster runs
(docs/containers.md, "Kubernetes"). What the container runs with is what Berth's own container
runtime gives it (app/agent/containerrun.py): the release's image, a read-only root with a small
in-memory /tmp, no privilege escalation, every capability dropped, the limits of the bundle or the
server, `[serve] env`; the probes ask the runner's /health. Pure: the release, the image facts
and the server's container settings in, the manifests out (kubeexport.py talks to the server)."""
from __future__ import annotations

import math
import re

from app.agent.containerimage import PORT_INSIDE
from app.agent.runnerenv import declared_problem

from .profile_report import HEADROOM  # the memory request: the profile's peak RSS times this

MI = 1024 * 1024
TMP_SIZE = "64Mi"  # the tmpfs Berth's container runtime mounts on /tmp
LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
DOCKER_SIZE = re.compile(r"([1-9][0-9]*)([kmg]?)")


def manifests(release: dict, image: str, *, image_user: str = "", settings: dict | None = None,
              replicas: int = 2, server: str = "", exported_by: str = "", exported_at: str = "") -> list[dict]:
    """[Deployment, Service] for `release` (a row of the agent's `releases`) running `image`."""
    m = release["manifest"]
    name = m["name"]  # a model name ([a-z][a-z0-9-]{0,62}) is already a DNS-1035 label
    selector = {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}
    labels = dict(selector, **{"app.kubernetes.io/component": "model"})
    version = label_value(release["version"])
    if version:
        labels["app.kubernetes.io/version"] = version
    notes = annotations(release, server=server, exported_by=exported_by, exported_at=exported_at)
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels, "annotations": notes},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector},
            # a new version starts and answers its readiness probe before an old pod goes (Berth's switch)
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": labels, "annotations": notes},
                         "spec": pod_spec(m, image, image_user, settings or {}, release.get("profile"))},
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": labels, "annotations": {"berth/bundle-sha256": release.get("sha256") or ""}},
        "spec": {"type": "ClusterIP", "selector": selector,
                 "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]},
    }
    return [deployment, service]


def pod_spec(m: dict, image: str, image_user: str, settings: dict, profile: dict | None = None) -> dict:
    health_timeout = float(m.get("health_timeout_s") or 60)
    probe = {"httpGet": {"path": "/health", "port": "http"}, "timeoutSeconds": 2}
    container = {
        "name": "model", "image": image, "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": PORT_INSIDE, "protocol": "TCP"}],
        # the model's load may take the bundle's health_timeout_s, as on a Berth server
        "startupProbe": dict(probe, periodSeconds=2, failureThreshold=max(1, math.ceil(health_timeout / 2))),
        "readinessProbe": dict(probe, periodSeconds=5, failureThreshold=2),
        "livenessProbe": dict(probe, periodSeconds=10, failureThreshold=3),
        "securityContext": security_context(image_user),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    env = [{"name": k, "value": str(v)} for k, v in sorted((m.get("env") or {}).items())
           if declared_problem(k, v) is None]
    if env:
        container["env"] = env
    resources = resources_of(m, settings, profile)
    if resources:
        container["resources"] = resources
    return {"automountServiceAccountToken": False, "enableServiceLinks": False,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "terminationGracePeriodSeconds": 30,
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": TMP_SIZE}}]}


def security_context(image_user: str) -> dict:
    """As Berth runs the container; runAsNonRoot only when the image says it runs as a numeric non-root
    user (the kubelet cannot check a user name, and Berth's images run as root: docs/containers.md)."""
    out = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "privileged": False,
           "capabilities": {"drop": ["ALL"]}}
    uid = image_user.split(":")[0]
    if uid.isdigit() and int(uid) > 0:
        out["runAsNonRoot"] = True
        out["runAsUser"] = int(uid)
    return out


def resources_of(m: dict, settings: dict, profile: dict | None = None) -> dict:
    """Limits as the container runs with under Berth (the bundle's, else the server's); the memory
    request from the bundle's profile (peak RSS with headroom) when it was profiled, else the limit."""
    memory = m.get("memory") or settings.get("memory")
    cpus = m.get("cpus") or settings.get("cpus")
    limits, requests = {}, {}
    if memory:
        limits["memory"] = quantity(memory)
    if cpus:
        limits["cpu"] = f"{max(1, round(float(cpus) * 1000))}m"
        requests["cpu"] = limits["cpu"]
    peak = (profile or {}).get("rss_peak_bytes")
    if isinstance(peak, int) and peak > 0:
        wanted = math.ceil(peak * HEADROOM / MI)
        if memory:
            wanted = min(wanted, math.ceil(docker_bytes(memory) / MI))
        requests["memory"] = f"{wanted}Mi"
    elif memory:
        requests["memory"] = limits["memory"]
    return {k: v for k, v in (("limits", limits), ("requests", requests)) if v}


def docker_bytes(size: str) -> int:
    """512m, 2g, 1000k or a number of bytes (the container settings' form) in bytes."""
    found = DOCKER_SIZE.fullmatch(str(size).lower())
    if not found:
        raise ValueError(f"memory {size!r} is not a size such as 512m or 2g")
    return int(found.group(1)) * {"": 1, "k": 1024, "m": MI, "g": 1024 * MI}[found.group(2)]


def quantity(size: str) -> str:
    """The same size as a Kubernetes quantity: 512m -> 512Mi (Docker's m is MiB, Kubernetes' m is milli)."""
    found = DOCKER_SIZE.fullmatch(str(size).lower())
    if not found:
        raise ValueError(f"memory {size!r} is not a size such as 512m or 2g")
    return found.group(1) + {"": "", "k": "Ki", "m": "Mi", "g": "Gi"}[found.group(2)]


def label_value(text: str) -> str:
    """A label value (63 characters, letters, digits, -_. inside): 1.0.0+cpu becomes 1.0.0_cpu."""
    value = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:63].strip("_.-")
    return value if LABEL_VALUE.fullmatch(value or "-") else ""


def annotations(release: dict, *, server: str, exported_by: str, exported_at: str) -> dict:
    """What the bundle and its deploy said, kept beside the objects (values any length, unlike labels)."""
    m = release["manifest"]
    who = release.get("deployed_by") or {}
    out = {"berth/bundle-sha256": release.get("sha256") or "",
           "berth/version": release["version"],
           "berth/entrypoint": m.get("entrypoint") or "",
           "berth/deployed-by": f"{who.get('user', '?')}@{who.get('host', '?')}" if who else "",
           "berth/deployed-at": release.get("deployed_at") or "",
           "berth/exported-from": server, "berth/exported-by": exported_by, "berth/exported-at": exported_at}
    if m.get("description"):
        out["berth/description"] = str(m["description"])[:2000]
    if m.get("authors"):
        out["berth/authors"] = ", ".join(str(a) for a in m["authors"])[:500]
    metrics = (m.get("training") or {}).get("metrics")
    if isinstance(metrics, dict) and metrics:
        out["berth/training-metrics"] = ", ".join(f"{k}={v}" for k, v in sorted(metrics.items()))[:2000]
    return {k: v for k, v in out.items() if v}
