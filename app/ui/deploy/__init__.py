"""The deploy dialog: check, confirm, progress."""
