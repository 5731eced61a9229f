"""Exceptions of the storage layer, below every module that raises them.

They live apart from :mod:`ssald_index.store` so that search and maintenance modules, which the store
builds on, can raise them without importing the store.
"""

from __future__ import annotations

__all__ = ["ObjectNotFound", "TableNotReady"]


class ObjectNotFound(KeyError):
    """No object with this objid in the table (or, with ``message``, none at the asked position)."""

    def __init__(self, objid: int | None, message: str | None = None) -> None:
        super().__init__(objid)
        self.objid = objid
        self.message = message or f"objid {objid} is not in the objects table"

    def __str__(self) -> str:
        return self.message


class TableNotReady(RuntimeError):
    """The database has no ``objects`` table yet (nothing ingested)."""
