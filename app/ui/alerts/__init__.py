"""The Alerts view, its Silence dialog and the notification of an alert that newly fires."""
