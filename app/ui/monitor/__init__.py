"""The Monitor page: fleet overview and live graphs."""
