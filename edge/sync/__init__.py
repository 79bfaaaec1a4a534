"""A terminal following a hub's face library through its change feed (docs/sync.md)."""
