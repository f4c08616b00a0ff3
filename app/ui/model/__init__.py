"""A model's page: header, overview, releases, the runner's log, Try it."""
