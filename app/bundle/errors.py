"""Errors of the bundle layer: each carries one line an operator can act on."""
from __future__ import annotations

from typing import TYPE_CHECKING

from app import errors
from app.errors import BerthError

if TYPE_CHECKING:  # pragma: no cover
    from .manifest import Problem


class BundleError(BerthError):
    """A bundle cannot be used; the message is one clear line for an operator."""

    default_code = errors.BUNDLE


class UnsafeArchive(BundleError):
    """An archive was refused before anything was written (hostile, corrupt or too big)."""


class InvalidBundle(BundleError):
    """The bundle failed its check; every problem is kept so a UI can list them all."""

    def __init__(self, problems: list["Problem"]):
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"] or self.problems
        first = str(errors[0]) if errors else "invalid bundle"
        more = len(self.problems) - 1
        suffix = f" (and {more} more problem{'s' if more != 1 else ''})" if more > 0 else ""
        super().__init__(first + suffix)


class UnsafeFile(BundleError):
    """A file of a bundle folder cannot be shipped (link leaving the bundle, device, odd name)."""

    def __init__(self, path: str, reason: str, hint: str | None = None):
        self.path, self.reason, self.hint = path, reason, hint
        super().__init__(f"{path}: {reason}")
