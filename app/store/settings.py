"""Berth's own settings, kept in the local database: few, typed, each with a meaning an operator
can read. Changing one is audited (Workspace.set_setting)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    key: str
    default: str
    meaning: str
    choices: tuple[str, ...] = ()
    bounds: tuple[float, float] | None = None  # a number from .. to (both included)
    unit: str = ""  # the bounded number is whole (of this unit: "seconds", "megabytes") when given


KNOWN = {s.key: s for s in (
    Setting("require_reason_production", "false",
            "deploys and rollbacks on a production server need a reason (--reason)", ("true", "false")),
    Setting("require_staging_first", "false",
            "a production server accepts only bundles (by sha256) that have run on a staging server first",
            ("true", "false")),
    Setting("wheel_cache_mb", "4096",
            "the most megabytes of wheels kept on this computer for offline servers (oldest used go first)",
            bounds=(1, 10 ** 9), unit="megabytes"),
    Setting("ssh_persist", "600",
            "seconds a CLI call's SSH connection is held for the next call to the same server (0: none; "
            "$BERTH_SSH_PERSIST wins)", bounds=(0, 10 ** 7), unit="seconds"),
    Setting("four_eyes_production", "false",
            "this desktop's deploys and rollbacks on a production server wait for a second releaser's approval "
            "(`berth approve`); a server whose policy has four eyes holds them whatever this says", ("true", "false")),
    Setting("approval_expiry_hours", "24",
            "how long a change waiting for a second releaser's approval may wait before it expires (0.01 to 168)",
            bounds=(0.01, 168.0)),
)}


class Settings:
    def __init__(self, db):
        self.db = db

    def get(self, key: str) -> str:
        setting = _known(key)
        row = self.db.execute("select value from settings where key = ?", [key]).fetchone()
        return row[0] if row else setting.default

    def flag(self, key: str) -> bool:
        return self.get(key) == "true"

    def set(self, key: str, value: str) -> str:
        """Returns the value before."""
        setting = _known(key)
        value = value.strip().lower() if setting.choices else value
        if setting.choices and value not in setting.choices:
            raise ValueError(f"{key} must be one of {', '.join(setting.choices)}, not {value!r}")
        if setting.bounds:
            value = value.strip()
            _check_bounds(key, value, *setting.bounds, setting.unit)
        old = self.get(key)
        with self.db.conn:
            self.db.execute("insert or replace into settings (key, value) values (?, ?)", [key, value])
        return old

    def describe(self) -> list[dict]:
        return [{"key": s.key, "value": self.get(s.key), "default": s.default, "meaning": s.meaning}
                for s in KNOWN.values()]


def _check_bounds(key: str, value: str, low: float, high: float, unit: str) -> None:
    try:
        whole = value.isascii() and value.isdigit()  # not "+5", "1_000", "1e3" or another script's digits
        ok = low <= (int(value) if whole else float("nan") if unit else float(value)) <= high
    except ValueError:
        ok = False
    if not ok:
        what, span = ((f"a whole number of {unit}", f"{int(low)} to {int(high)}") if unit
                      else ("a number", f"{low:g} to {high:g}"))
        raise ValueError(f"{key} must be {what} from {span}, not {value!r}")


def _known(key: str) -> Setting:
    if key not in KNOWN:
        raise ValueError(f"no setting {key!r}; known: {', '.join(KNOWN)}")
    return KNOWN[key]
