"""What a deploy would change, before it happens: versions, metrics, data set, code and parameters of
the release now current on the server against the bundle about to replace it. Plain values, so the
console's confirmation page and the CLI can both show them."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from app.bundle import Manifest
from app.remote.transport import Transport

from .queries import releases

# Metrics whose name says smaller is better; every other numeric metric is taken as larger-is-better.
_LOWER_IS_BETTER = ("loss", "error", "err", "mse", "mae", "rmse", "latency", "perplexity", "time", "seconds")


@dataclass(frozen=True)
class MetricRow:
    name: str
    old: object = None  # None when the metric is absent on that side
    new: object = None
    delta: float | None = None  # new - old, when both are numbers

    @property
    def changed(self) -> bool:
        return self.old != self.new

    @property
    def improved(self) -> bool | None:
        """True / False when the delta is a clear gain / loss, None when unknown or zero."""
        if not self.delta:
            return None
        lower = any(part in _LOWER_IS_BETTER for part in self.name.lower().replace("-", "_").split("_"))
        return (self.delta < 0) if lower else (self.delta > 0)


@dataclass(frozen=True)
class Change:
    """One value before and after (None where absent)."""

    old: object = None
    new: object = None

    @property
    def changed(self) -> bool:
        return self.old != self.new


@dataclass(frozen=True)
class DatasetChange:
    old_dataset: str | None = None
    old_sha256: str | None = None
    new_dataset: str | None = None
    new_sha256: str | None = None

    @property
    def changed(self) -> bool:
        return (self.old_dataset, self.old_sha256) != (self.new_dataset, self.new_sha256)

    @property
    def same_data_renamed(self) -> bool:
        return bool(self.old_sha256) and self.old_sha256 == self.new_sha256 and self.old_dataset != self.new_dataset


@dataclass(frozen=True)
class ParamChange:
    name: str
    old: object = None
    new: object = None


@dataclass(frozen=True)
class DeployPlan:
    model: str
    old_version: str | None  # None when nothing is deployed yet
    new_version: str
    metrics: list[MetricRow] = field(default_factory=list)
    dataset: DatasetChange = field(default_factory=DatasetChange)
    code_commit: Change = field(default_factory=Change)
    params: list[ParamChange] = field(default_factory=list)  # only the parameters that differ
    server: str = ""
    known_versions: tuple[str, ...] = ()  # every complete release on the server (filled by plan_deploy)

    @property
    def first_deploy(self) -> bool:
        return self.old_version is None

    @property
    def same_version(self) -> bool:
        return self.old_version == self.new_version

    @property
    def version_text(self) -> str:
        """"iris 1.0.0 → 1.1.0", or "iris 1.1.0 (first deploy)"."""
        if self.old_version is None:
            return f"{self.model} {self.new_version} (first deploy)"
        return f"{self.model} {self.old_version} → {self.new_version}"


def compare(current_manifest: dict | None, new: Manifest) -> DeployPlan:
    """The difference between the current release's manifest (as the server stores it, a dict; None
    when nothing is deployed) and the bundle's manifest."""
    return compare_dicts(current_manifest, {"name": new.name, "version": new.version, "training": new.training})


def compare_dicts(current_manifest: dict | None, new: dict) -> DeployPlan:
    """`compare` for two manifests as the server stores them (`berth diff`: two releases)."""
    old = current_manifest or {}
    old_training = dict(old.get("training") or {})
    new_training = dict(new.get("training") or {})
    old_metrics = dict(old_training.get("metrics") or {})
    new_metrics = dict(new_training.get("metrics") or {})
    rows = [MetricRow(k, old_metrics.get(k), new_metrics.get(k), _delta(old_metrics.get(k), new_metrics.get(k)))
            for k in _union(new_metrics, old_metrics)]
    old_params = dict(old_training.get("params") or {})
    new_params = dict(new_training.get("params") or {})
    params = [ParamChange(k, old_params.get(k), new_params.get(k))
              for k in _union(new_params, old_params) if old_params.get(k) != new_params.get(k)]
    return DeployPlan(
        model=new.get("name") or old.get("name") or "",
        old_version=old.get("version") if current_manifest is not None else None,
        new_version=new.get("version") or "",
        metrics=rows,
        dataset=DatasetChange(old_training.get("dataset"), old_training.get("dataset_sha256"),
                              new_training.get("dataset"), new_training.get("dataset_sha256")),
        code_commit=Change(old_training.get("code_commit"), new_training.get("code_commit")),
        params=params,
    )


def plan_deploy(transport: Transport, manifest: Manifest) -> DeployPlan:
    """Ask the server which release of the model is current and compare the bundle against it."""
    rows = releases(transport, manifest.name)
    current = next((r for r in rows if r.get("current")), None)
    old = None
    if current is not None:
        old = dict(current.get("manifest") or {})
        old.setdefault("version", current.get("version"))
    plan = compare(old, manifest)
    return dataclasses.replace(plan, server=transport.name, known_versions=tuple(r["version"] for r in rows))


def _union(first: dict, second: dict) -> list[str]:
    """Keys of `first` in order, then those only in `second`."""
    return list(first) + [k for k in second if k not in first]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _delta(old, new) -> float | None:
    if _number(old) and _number(new):
        d = new - old
        return round(d, 12) if isinstance(d, float) else d
    return None
