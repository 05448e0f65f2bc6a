"""What differs between the two databases: connecting, parameter style, types, locks, who holds a claim."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from engine.store.query import Dialect


class Backend(Protocol):
    shown: str
    """The store's address as messages show it (never with a password)."""
    types: ClassVar[dict[str, str]]
    """``id``, ``seq``, ``real``, ``big`` and ``blob`` in the migrations in this database's words; ``same``: equal,
    NULL to NULL too."""
    figures: ClassVar[dict[str, str]]
    """What the line's figures (``engine.store.figures``, ``engine.store.spreads``, ``engine.store.measured``) say
    in this database's words: ``each``, a FROM item unnesting attempt ``a``'s measurements into rows ``j``
    (``j.key``: their order; a value written as NaN or an infinity read as null); ``name``, ``verdict``,
    ``units`` (text) and ``value``, ``low``, ``high`` (a number, NULL when not one) of row ``j``; ``whole``, the
    whole part of the non-negative number ``{}``."""
    sql: Dialect
    """A statement written with ``?`` parameters, in this driver's parameter style."""
    for_update: str
    """Appended to a SELECT that locks the rows it reads inside a write transaction."""
    one_writer: bool
    """Whether one write transaction at a time holds the whole database (SQLite): then the rows a transaction
    inserts into a table get consecutive ids, and the last one's id says them all."""

    def connect(self) -> Any:
        """A DB-API connection in autocommit mode: transactions are begun explicitly."""
        ...

    def begin(self, conn: Any, *, write: bool, durable: bool) -> None:
        """Begin a transaction; a write one takes the write lock up front; a durable one survives power loss."""
        ...

    def end(self, conn: Any, *, write: bool, commit: bool, durable: bool) -> None:
        """End what ``begin`` began (with the same ``write`` and ``durable``)."""
        ...

    def migration_lock(self, conn: Any) -> None:
        """Inside the migration transaction: keep other processes from migrating at the same time."""
        ...

    def holder(self, conn: Any) -> str:
        """Who this connection is, as written in claims and intents."""
        ...

    def alive(self, conn: Any, holder: str) -> bool:
        """Whether the holder of a claim or intent is still running."""
        ...

    def closed(self) -> None:
        """The store's connection was closed."""
        ...
