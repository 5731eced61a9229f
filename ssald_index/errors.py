"""Exceptions of the storage layer, below every module that raises them, and the "still wanted?" check.

They live apart from :mod:`ssald_index.store` so that search and maintenance modules, which the store
builds on, can raise them without importing the store.

Long work (a retrain, a strategy over the whole table) takes a ``wanted`` callable from its caller and
calls :func:`check_wanted` between its stages: a server passes its call's ``context.is_active``, so work
whose client cancelled or passed its deadline stops there with :class:`Abandoned` (``CANCELLED``), without
this package knowing about gRPC.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Abandoned", "ObjectNotFound", "TableNotReady", "Wanted", "check_wanted"]

#: Whether the answer of some work is still wanted (e.g. a gRPC call's ``context.is_active``): cheap, called
#: between the stages of that work.
Wanted = Callable[[], bool]


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


class Abandoned(Exception):
    """The caller stopped waiting for some work (cancelled, or passed its deadline): the rest would be thrown away."""


def check_wanted(wanted: Wanted | None, step: str) -> None:
    """Raise :class:`Abandoned` when ``wanted`` says the answer is no longer wanted, so that ``step`` never runs.

    Parameters
    ----------
    wanted : callable or None
        The caller's check (``None``: always wanted, as for work run from Python).
    step : str
        The stage about to start, named in the message ("fitting the classifier of 'merger'").
    """
    if wanted is not None and not wanted():
        raise Abandoned(f"the caller gave up (cancelled, or its deadline passed) before {step}")
