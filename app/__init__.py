"""Berth: deploy, serve and roll back data-science models on your own servers."""
__version__ = "0.1.0"
