"""The notebook side of Berth, imported as `import berth`: save a model as a bundle in one call.

Importing it loads no Qt, no paramiko and no model library: a library is imported only when a model
of it is saved (tests/test_notebook_import.py)."""
from .errors import NotebookError
from .save import SavedBundle, save_bundle

__all__ = ["save_bundle", "SavedBundle", "NotebookError"]
