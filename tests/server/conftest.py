"""The package's fixtures: a real 50-object table and a real server over it (defined once, in helpers)."""

from tests.server.helpers import address, db

__all__ = ["address", "db"]
