"""The desktop console: the only package that imports Qt (PySide6) or pyqtgraph."""
