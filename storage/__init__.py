"""SQLite storage: schema and migrations, snapshots, the fetch log and change events.

The names below come from ``pawatch.storage.store``, imported on first use (PEP 562): a command
that only needs ``pawatch.storage.outbox`` or ``bodytext`` does not pay for sqlite-utils."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pawatch.storage.store import (
        CheckInput,
        CheckOutcome,
        Snapshot,
        SourceRow,
        SourceStatus,
        StorageError,
        Store,
        Validators,
        format_time,
        parse_time,
    )

__all__ = [
    "CheckInput",
    "CheckOutcome",
    "Snapshot",
    "SourceRow",
    "SourceStatus",
    "StorageError",
    "Store",
    "Validators",
    "format_time",
    "parse_time",
]

if not TYPE_CHECKING:  # mypy sees the imports above, so a misspelt name stays an error

    def __getattr__(name: str) -> Any:
        if name in __all__:
            from pawatch.storage import store

            return getattr(store, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
