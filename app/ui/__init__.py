"""The desktop console: the only package that imports Qt (PySide6) or pyqtgraph."""
from app.ui.pyside_imports import keep_imports_lean

keep_imports_lean()  # before the console's modules are imported: PySide6 would keep each one's source lines
