"""What changed between two releases of a model: the deploy plan's metrics, parameters, data set and
code commit (`plan.compare`, so `berth diff`, `berth deploy` and the console say the same), plus
requirements and files. Plain values, for the CLI's text and JSON and the console's Releases tab."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from app.remote.transport import Transport

from .errors import OperationFailed
from .plan import DeployPlan, compare_dicts
from .queries import not_deployed, releases

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class RequirementChange:
    name: str
    old: str | None = None  # the whole requirement line; None when absent on that side
    new: str | None = None


@dataclass(frozen=True)
class ReleaseDiff:
    plan: DeployPlan
    old_sha256: str | None = None
    new_sha256: str | None = None
    requirements: list[RequirementChange] = field(default_factory=list)  # only those that differ
    files_added: list[str] = field(default_factory=list)
    files_removed: list[str] = field(default_factory=list)
    files_changed: list[str] = field(default_factory=list)

    @property
    def same_content(self) -> bool:
        return bool(self.old_sha256) and self.old_sha256 == self.new_sha256


def requirement_lines(text: str | None) -> dict[str, str]:
    """{normalized name: line} of a requirements file; comments, blank lines and pip options
    (`-r`, `--hash` continuation lines) are left out, names compared as PEP 503 says."""
    out: dict[str, str] = {}
    for raw in (text or "").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        m = _NAME.match(line)
        if m:
            out[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = line
    return out


def requirements_diff(old_text: str | None, new_text: str | None) -> list[RequirementChange]:
    old, new = requirement_lines(old_text), requirement_lines(new_text)
    names = list(new) + [k for k in old if k not in new]
    return [RequirementChange(k, old.get(k), new.get(k)) for k in names if old.get(k) != new.get(k)]


def diff_releases(old: dict, new: dict) -> ReleaseDiff:
    """`old` and `new` as the agent's `releases` lists them, with requirements and files."""
    plan = compare_dicts(dict(old.get("manifest") or {}, version=old["version"]),
                         dict(new.get("manifest") or {}, version=new["version"]))
    old_files = {f["path"]: f.get("sha256") for f in old.get("files") or []}
    new_files = {f["path"]: f.get("sha256") for f in new.get("files") or []}
    return ReleaseDiff(
        plan=plan, old_sha256=old.get("sha256"), new_sha256=new.get("sha256"),
        requirements=requirements_diff(old.get("requirements"), new.get("requirements")),
        files_added=sorted(set(new_files) - set(old_files)),
        files_removed=sorted(set(old_files) - set(new_files)),
        files_changed=sorted(p for p in set(old_files) & set(new_files) if old_files[p] != new_files[p]),
    )


def diff_on_server(transport: Transport, model: str, old_version: str, new_version: str) -> ReleaseDiff:
    rows = releases(transport, model, requirements=True, files_of=(old_version, new_version))
    if not rows:
        raise not_deployed(transport, model)
    by_version = {r["version"]: r for r in rows}
    for v in (old_version, new_version):
        if v not in by_version:
            known = ", ".join(r["version"] for r in rows)
            raise OperationFailed(f"{model} has no release {v} on {transport.name} (it has {known})", code="usage")
    return diff_releases(by_version[old_version], by_version[new_version])


def to_json(d: ReleaseDiff) -> dict:
    p = d.plan
    return {
        "model": p.model, "old": {"version": p.old_version, "sha256": d.old_sha256},
        "new": {"version": p.new_version, "sha256": d.new_sha256}, "same_content": d.same_content,
        "metrics": [{"name": m.name, "old": m.old, "new": m.new, "delta": m.delta, "improved": m.improved}
                    for m in p.metrics],
        "params": [{"name": c.name, "old": c.old, "new": c.new} for c in p.params],
        "dataset": {"old": {"name": p.dataset.old_dataset, "sha256": p.dataset.old_sha256},
                    "new": {"name": p.dataset.new_dataset, "sha256": p.dataset.new_sha256},
                    "changed": p.dataset.changed},
        "code_commit": {"old": p.code_commit.old, "new": p.code_commit.new, "changed": p.code_commit.changed},
        "requirements": [{"name": r.name, "old": r.old, "new": r.new} for r in d.requirements],
        "files": {"added": d.files_added, "removed": d.files_removed, "changed": d.files_changed},
    }


def value(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def signed(v) -> str:
    return f"{v:+.6g}" if isinstance(v, float) else f"{v:+d}"


def plan_lines(p: DeployPlan) -> list[str]:
    """The metrics, parameters, data set and code lines, as the console's confirmation shows them."""
    lines = []
    if p.same_version:
        return ["the same version is already current: the server checks that its content is the same"]
    if p.first_deploy:  # nothing to compare with: what it brings, in one line each
        if p.metrics:
            lines.append("metrics: " + ", ".join(f"{m.name} {value(m.new)}" for m in p.metrics))
        if p.dataset.new_dataset or p.dataset.new_sha256:
            lines.append(f"data set: {_data(p.dataset.new_dataset, p.dataset.new_sha256)}")
        if p.code_commit.new:
            lines.append(f"code commit: {p.code_commit.new}")
        return lines
    if p.metrics:
        width = max(len(m.name) for m in p.metrics)
        lines.append("metrics:")
        for m in p.metrics:
            note = ("new" if m.old is None else "removed" if m.new is None else
                    "" if not m.changed else signed(m.delta) + {True: ", better", False: ", worse", None: ""}[m.improved]
                    if m.delta is not None else "changed")
            lines.append(f"  {m.name.ljust(width)}  {value(m.old)} → {value(m.new)}" + (f"  ({note})" if note else ""))
    if p.params:
        width = max(len(c.name) for c in p.params)
        lines.append("params:")
        lines += [f"  {c.name.ljust(width)}  {value(c.old)} → {value(c.new)}" for c in p.params]
    d = p.dataset
    if d.changed:
        lines.append(f"data set: {_data(d.old_dataset, d.old_sha256)} → {_data(d.new_dataset, d.new_sha256)}"
                     + ("  (same data, renamed)" if d.same_data_renamed else ""))
    elif d.new_dataset or d.new_sha256:
        lines.append(f"data set: {_data(d.new_dataset, d.new_sha256)} (unchanged)")
    c = p.code_commit
    if c.changed:
        lines.append(f"code commit: {value(c.old)} → {value(c.new)}")
    elif c.new:
        lines.append(f"code commit: {c.new} (unchanged)")
    return lines


def diff_lines(d: ReleaseDiff) -> list[str]:
    lines = [d.plan.version_text + ("  (the same bundle content)" if d.same_content else "")]
    lines += plan_lines(d.plan)
    if d.requirements:
        width = max(len(r.name) for r in d.requirements)
        lines.append("requirements:")
        lines += [f"  {r.name.ljust(width)}  {r.old or '(none)'} → {r.new or '(removed)'}" for r in d.requirements]
    changed = len(d.files_added) + len(d.files_removed) + len(d.files_changed)
    if changed:
        lines.append(f"files: {len(d.files_added)} added, {len(d.files_removed)} removed, {len(d.files_changed)} changed")
        lines += [f"  + {f}" for f in d.files_added] + [f"  - {f}" for f in d.files_removed]
        lines += [f"  ~ {f}" for f in d.files_changed]
    elif not d.same_content:
        lines.append("files: the same")
    return lines


def _data(name, sha) -> str:
    return f"{name or '?'}, sha256 {sha[:12]}" if sha else (name or "not recorded")
