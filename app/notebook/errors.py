"""The notebook API's one error: what cannot be saved and what to do, said before anything is written."""
from __future__ import annotations

from app import errors
from app.errors import BerthError


class NotebookError(BerthError):
    """save_bundle cannot write a bundle for these arguments; the message says why and what to do."""

    default_code = errors.BUNDLE
