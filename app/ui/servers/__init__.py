"""Servers: the sidebar fleet, a server's page, adding and editing servers, host keys, the lock."""
