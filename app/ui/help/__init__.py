"""Help inside the app: the first-run welcome, the user guide, keyboard shortcuts, About."""
