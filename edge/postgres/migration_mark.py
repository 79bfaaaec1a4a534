"""The mark of a library that `edge library migrate` is still filling: never served.

Kept apart from edge/postgres/migrate.py (psycopg, the SQLite store) so that both
stores can check it at open without importing either.
"""
from __future__ import annotations

from pathlib import Path

from edge.sqlite import StorageError

# meta key present in a migration's target until its copy is verified (value: JSON of
# where it comes from); the migrator removes it in the transaction that ends the copy.
MARK_KEY = "migration_incomplete"


class IncompleteLibrary(StorageError):
    """A library that is a migration's unfinished copy."""

    def __init__(self, where: Path | str, mark: str):
        super().__init__("incomplete", where, f"{MARK_KEY}={mark[:200]}",
                         "run `edge library migrate` again to finish it, or migrate with --replace")


def refuse_incomplete(mark: str | None, where: Path | str) -> None:
    """Raise IncompleteLibrary when a library's meta holds MARK_KEY (its value `mark`):
    every store calls this at open with `SELECT value FROM meta WHERE key=MARK_KEY`."""
    if mark is not None:
        raise IncompleteLibrary(where, mark)
