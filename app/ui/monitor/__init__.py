"""The Monitor page: fleet overview and live graphs. Views only: the live window, the alert rule,
markers and exports are plain Python in app/monitor; these widgets listen to the MonitorFeed."""
