"""SQLite storage: schema and migrations, snapshots, the fetch log and change events."""

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
