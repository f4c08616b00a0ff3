"""`import berth`: Berth's notebook API (app/notebook), under the name a data scientist types.

    import berth
    berth.save_bundle(model, "bundles/churn-1.0.0", name="churn", version="1.0.0", example=X_test[:5])
"""
from app import __version__
from app.notebook import NotebookError, SavedBundle, save_bundle

__all__ = ["save_bundle", "SavedBundle", "NotebookError", "__version__"]
