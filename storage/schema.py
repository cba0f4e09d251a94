"""The database schema, as an ordered list of migrations (sqlite-utils ``Migrations``).

Never edit a migration that has shipped: add a new one. ``SCHEMA_VERSION`` is the number of
migrations; ``pawatch status`` shows it.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("pawatch")


@migrations(name="0001_fetch_log_snapshots_events")
def _m0001(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE sources (
            id TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            parser TEXT NOT NULL,
            delegation TEXT,
            first_seen TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        -- Raw bodies, stored once per distinct SHA-256, zstd-compressed.
        CREATE TABLE bodies (
            sha256 TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            compression TEXT NOT NULL,
            data BLOB NOT NULL
        );
        -- One row per version of a source: a new row when the body differs from the
        -- source's previous snapshot; an unchanged fetch only moves last_seen.
        CREATE TABLE snapshots (
            id INTEGER PRIMARY KEY,
            source_id TEXT NOT NULL REFERENCES sources(id),
            sha256 TEXT NOT NULL REFERENCES bodies(sha256),
            url TEXT NOT NULL,
            content_type TEXT,
            etag TEXT,
            last_modified TEXT,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            seen_count INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX snapshots_by_source ON snapshots(source_id, id);
        -- One row per fetch attempt of a source (a check), whatever its outcome.
        CREATE TABLE fetch_log (
            id INTEGER PRIMARY KEY,
            source_id TEXT NOT NULL REFERENCES sources(id),
            url TEXT NOT NULL,
            started_at TEXT NOT NULL,
            duration_ms INTEGER NOT NULL,
            outcome TEXT NOT NULL
                CHECK (outcome IN ('new', 'changed', 'unchanged', 'not_modified', 'failed')),
            http_status INTEGER,
            error_kind TEXT,
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 1,
            etag TEXT,
            last_modified TEXT,
            snapshot_id INTEGER REFERENCES snapshots(id)
        );
        CREATE INDEX fetch_log_by_source ON fetch_log(source_id, id);
        CREATE INDEX fetch_log_by_time ON fetch_log(started_at);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            detected_at TEXT NOT NULL,
            source_id TEXT REFERENCES sources(id),
            delegation TEXT,
            attribute TEXT,
            old TEXT,
            new TEXT,
            url TEXT,
            before_snapshot INTEGER REFERENCES snapshots(id),
            after_snapshot INTEGER REFERENCES snapshots(id),
            details TEXT
        );
        CREATE INDEX events_by_time ON events(detected_at);
        CREATE INDEX events_by_source ON events(source_id, id);
        """
    )


SCHEMA_VERSION = len(migrations._migrations)
