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


@migrations(name="0002_facts_state_news_views")
def _m0002(db: Database) -> None:
    db.executescript(
        """
        -- A fact read from a source's page, valid from first_seen until ended_at (the first
        -- good parse of the same source that no longer had it). Snapshot ids prove each moment.
        CREATE TABLE facts (
            id INTEGER PRIMARY KEY,
            source_id TEXT NOT NULL REFERENCES sources(id),
            subject TEXT NOT NULL,
            attribute TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            ended_at TEXT,
            first_snapshot INTEGER REFERENCES snapshots(id),
            last_snapshot INTEGER REFERENCES snapshots(id),
            end_snapshot INTEGER REFERENCES snapshots(id),
            parser_version INTEGER NOT NULL
        );
        CREATE INDEX facts_open_by_source ON facts(source_id, ended_at);
        CREATE INDEX facts_by_subject ON facts(subject, attribute, first_seen);

        -- Per-source monitoring state: parse health, failure streaks, unconfirmed changes.
        CREATE TABLE source_state (
            source_id TEXT PRIMARY KEY REFERENCES sources(id),
            parser_version INTEGER,
            parsed_snapshot INTEGER REFERENCES snapshots(id),
            baseline_at TEXT,
            parse_status TEXT,
            parse_error TEXT,
            broken_since TEXT,
            warnings TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            failing_since TEXT,
            failing_alerted INTEGER NOT NULL DEFAULT 0,
            candidate TEXT,
            candidate_count INTEGER NOT NULL DEFAULT 0,
            candidate_since TEXT,
            candidate_snapshot INTEGER REFERENCES snapshots(id)
        );

        ALTER TABLE fetch_log ADD COLUMN parse_status TEXT;
        ALTER TABLE fetch_log ADD COLUMN parse_error TEXT;

        CREATE TABLE news (
            id INTEGER PRIMARY KEY,
            source_id TEXT NOT NULL REFERENCES sources(id),
            url TEXT NOT NULL,
            title TEXT NOT NULL,
            published TEXT,
            date_text TEXT,
            summary TEXT,
            text TEXT,
            first_seen TEXT NOT NULL,
            snapshot_id INTEGER REFERENCES snapshots(id),
            UNIQUE (source_id, url)
        );
        CREATE VIRTUAL TABLE news_fts USING fts5(
            title, summary, text, content='news', content_rowid='id',
            tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER news_ai AFTER INSERT ON news BEGIN
            INSERT INTO news_fts(rowid, title, summary, text)
            VALUES (new.id, new.title, new.summary, new.text);
        END;
        CREATE TRIGGER news_ad AFTER DELETE ON news BEGIN
            INSERT INTO news_fts(news_fts, rowid, title, summary, text)
            VALUES ('delete', old.id, old.title, old.summary, old.text);
        END;
        CREATE TRIGGER news_au AFTER UPDATE ON news BEGIN
            INSERT INTO news_fts(news_fts, rowid, title, summary, text)
            VALUES ('delete', old.id, old.title, old.summary, old.text);
            INSERT INTO news_fts(rowid, title, summary, text)
            VALUES (new.id, new.title, new.summary, new.text);
        END;

        CREATE VIEW current_composition AS
        SELECT substr(subject, 12) AS delegation, source_id, substr(attribute, 7) AS chamber,
               CAST(value AS INTEGER) AS seats, first_seen AS since, last_seen,
               first_snapshot AS snapshot_id
        FROM facts
        WHERE ended_at IS NULL AND attribute LIKE 'seats:%' AND subject LIKE 'delegation:%';

        CREATE VIEW composition_history AS
        SELECT substr(subject, 12) AS delegation, source_id, substr(attribute, 7) AS chamber,
               CAST(value AS INTEGER) AS seats, first_seen AS valid_from, ended_at AS valid_to,
               last_seen, first_snapshot, end_snapshot
        FROM facts
        WHERE attribute LIKE 'seats:%' AND subject LIKE 'delegation:%';

        CREATE VIEW representatives AS
        SELECT substr(f.subject, 12) AS delegation, f.source_id, f.value AS name,
               (SELECT r.value FROM facts r WHERE r.source_id = f.source_id
                  AND r.subject = f.subject AND r.attribute = 'plenipotentiary_role'
                  AND r.first_seen <= f.first_seen
                  AND (r.ended_at IS NULL OR r.ended_at > f.first_seen)
                ORDER BY r.first_seen DESC LIMIT 1) AS role,
               f.first_seen AS valid_from, f.ended_at AS valid_to, f.last_seen,
               f.first_snapshot, f.end_snapshot
        FROM facts f
        WHERE f.attribute = 'plenipotentiary' AND f.subject LIKE 'delegation:%';

        CREATE VIEW members AS
        SELECT substr(subject, 12) AS delegation, source_id, value AS name, key AS name_key,
               first_seen AS valid_from, ended_at AS valid_to, last_seen,
               first_snapshot, end_snapshot
        FROM facts
        WHERE attribute = 'member' AND subject LIKE 'delegation:%';

        CREATE VIEW recent_changes AS
        SELECT e.id, e.kind, e.detected_at, e.delegation, e.source_id, e.attribute, e.old,
               e.new, e.url, e.before_snapshot, e.after_snapshot
        FROM events e
        WHERE e.detected_at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-30 days')
        ORDER BY e.id DESC;

        CREATE VIEW source_health AS
        SELECT s.id AS source_id, s.url, s.parser, s.delegation,
               (SELECT MAX(started_at) FROM fetch_log l WHERE l.source_id = s.id) AS last_check,
               (SELECT MAX(started_at) FROM fetch_log l WHERE l.source_id = s.id
                  AND l.outcome != 'failed') AS last_success,
               COALESCE(st.consecutive_failures, 0) AS consecutive_failures,
               st.failing_since,
               (SELECT error FROM fetch_log l WHERE l.source_id = s.id AND l.outcome = 'failed'
                  ORDER BY l.id DESC LIMIT 1) AS last_error,
               st.parse_status, st.parse_error, st.broken_since,
               CASE WHEN COALESCE(st.failing_alerted, 0) = 1 THEN 'failing'
                    WHEN st.parse_status = 'broken' THEN 'broken'
                    WHEN st.parse_status IS NULL THEN 'unknown'
                    ELSE 'ok' END AS health
        FROM sources s LEFT JOIN source_state st ON st.source_id = s.id;
        """
    )


@migrations(name="0003_outbox")
def _m0003(db: Database) -> None:
    # Delivery (storage/outbox.py, docs/email.md). A trigger puts every new event in the
    # outbox inside the transaction that records it: channel 'all' (the general recipients)
    # and, for an event about a delegation, that delegation's channel too. Events recorded
    # before this migration are not added.
    db.executescript(
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            event_id INTEGER NOT NULL REFERENCES events(id),
            channel TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'delivered', 'skipped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            message_id TEXT,
            created_at TEXT NOT NULL,
            sending_at TEXT,
            delivered_at TEXT,
            UNIQUE (event_id, channel)
        );
        CREATE INDEX outbox_by_status ON outbox(status, channel, event_id);
        CREATE INDEX outbox_by_message ON outbox(message_id);
        CREATE TRIGGER events_to_outbox AFTER INSERT ON events BEGIN
            INSERT INTO outbox (event_id, channel, created_at)
            VALUES (new.id, 'all', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
            INSERT INTO outbox (event_id, channel, created_at)
            SELECT new.id, new.delegation, strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
            WHERE new.delegation IS NOT NULL AND new.delegation != 'all';
        END;
        -- Small delivery state: 'digest:<channel>' -> when that channel last got an email.
        CREATE TABLE delivery_state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        -- When each failing/broken source was last shown to the recipients (health repeats).
        CREATE TABLE health_notices (
            source_id TEXT NOT NULL,
            condition TEXT NOT NULL,
            since TEXT,
            last_sent TEXT NOT NULL,
            PRIMARY KEY (source_id, condition)
        );
        """
    )


@migrations(name="0004_query_indexes")
def _m0004(db: Database) -> None:
    # Measured on 5 years of hourly checks of 30 sources (bench/history.py): source_health
    # took 12 s (MAX(started_at) read every row of a source), events were always scanned.
    db.executescript(
        """
        CREATE INDEX fetch_log_failed ON fetch_log(source_id, id) WHERE outcome = 'failed';
        CREATE INDEX events_by_delegation ON events(delegation, id);
        CREATE INDEX events_by_kind ON events(kind, id);

        DROP VIEW source_health;
        CREATE VIEW source_health AS
        SELECT s.id AS source_id, s.url, s.parser, s.delegation,
               (SELECT started_at FROM fetch_log l WHERE l.source_id = s.id
                  ORDER BY l.id DESC LIMIT 1) AS last_check,
               (SELECT started_at FROM fetch_log l WHERE l.source_id = s.id
                  AND l.outcome != 'failed' ORDER BY l.id DESC LIMIT 1) AS last_success,
               COALESCE(st.consecutive_failures, 0) AS consecutive_failures,
               st.failing_since,
               (SELECT error FROM fetch_log l WHERE l.source_id = s.id AND l.outcome = 'failed'
                  ORDER BY l.id DESC LIMIT 1) AS last_error,
               st.parse_status, st.parse_error, st.broken_since,
               CASE WHEN COALESCE(st.failing_alerted, 0) = 1 THEN 'failing'
                    WHEN st.parse_status = 'broken' THEN 'broken'
                    WHEN st.parse_status IS NULL THEN 'unknown'
                    ELSE 'ok' END AS health
        FROM sources s LEFT JOIN source_state st ON st.source_id = s.id;

        DROP VIEW recent_changes;
        CREATE VIEW recent_changes AS
        SELECT e.id, e.kind, e.detected_at, e.delegation, e.source_id, e.attribute, e.old,
               e.new, e.url, e.before_snapshot, e.after_snapshot
        FROM events e
        WHERE e.detected_at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-30 days')
        ORDER BY e.detected_at DESC, e.id DESC;
        """
    )


@migrations(name="0005_source_fingerprint")
def _m0005(db: Database) -> None:
    # What a source's facts depend on besides its URL (parser, delegation, options,
    # encoding): when it changes, the facts are re-derived from the snapshots, silently.
    db.execute("ALTER TABLE sources ADD COLUMN fingerprint TEXT")


@migrations(name="0006_representative_role")
def _m0006(db: Database) -> None:
    # The role shown is the latest one stated while the person held the post (it was the
    # one stated when the name first appeared, which could be missing or stale).
    db.executescript(
        """
        DROP VIEW representatives;
        CREATE VIEW representatives AS
        SELECT substr(f.subject, 12) AS delegation, f.source_id, f.value AS name,
               (SELECT r.value FROM facts r WHERE r.source_id = f.source_id
                  AND r.subject = f.subject AND r.attribute = 'plenipotentiary_role'
                  AND r.first_seen < COALESCE(f.ended_at, '9999')
                  AND (r.ended_at IS NULL OR r.ended_at > f.first_seen)
                ORDER BY r.first_seen DESC, r.id DESC LIMIT 1) AS role,
               f.first_seen AS valid_from, f.ended_at AS valid_to, f.last_seen,
               f.first_snapshot, f.end_snapshot
        FROM facts f
        WHERE f.attribute = 'plenipotentiary' AND f.subject LIKE 'delegation:%';
        """
    )


@migrations(name="0012_fetch_log_final_url")
def _m0012(db: Database) -> None:
    # Where the fetch ended after redirects, when that is not the source's URL (NULL: the
    # same); a move to another host is also a `source_moved` event, once per move.
    db.execute("ALTER TABLE fetch_log ADD COLUMN final_url TEXT")


SCHEMA_VERSION = len(migrations._migrations)
