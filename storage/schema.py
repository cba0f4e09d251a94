"""The database schema, as an ordered list of migrations (sqlite-utils ``Migrations``).

Never edit a migration that has shipped: add a new one at the end. ``SCHEMA_VERSION`` is the
number of migrations (computed when read, so migrations added below count). ``Store.open``
applies the pending ones under the single-writer lock and refuses a database that has
migrations this version does not know (written by a newer pawatch).
"""

from __future__ import annotations

import sqlite3
import uuid

from sqlite_utils import Database, Migrations

migrations = Migrations("pawatch")


def _script(db: Database, sql: str) -> None:
    """Run several statements inside the migration's transaction (as sqlite-utils'
    ``executescript`` does there, without ``sqlite3.executescript``'s implicit commit). Cut
    at the semicolons that end a complete statement: sqlite-utils tests every prefix of the
    script character by character, which cost 0.2 s of each new database's set-up."""
    conn = db.conn
    statement = ""
    for piece in sql.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \t\r\n;"):
                conn.execute(statement)
            statement = ""
    if statement.strip(" \t\r\n;"):
        conn.execute(statement)


def known_names() -> list[str]:
    """The names of the migrations this version of pawatch knows, in order (the pending ones
    of an empty database: sqlite-utils has no other public list)."""
    return [m.name for m in migrations.pending(Database(memory=True, execute_plugins=False))]


def __getattr__(name: str) -> int:
    if name == "SCHEMA_VERSION":
        return len(known_names())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@migrations(name="0001_fetch_log_snapshots_events")
def _m0001(db: Database) -> None:
    _script(
        db,
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
        """,
    )


@migrations(name="0002_facts_state_news_views")
def _m0002(db: Database) -> None:
    _script(
        db,
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
        """,
    )


@migrations(name="0003_outbox")
def _m0003(db: Database) -> None:
    # Delivery (storage/outbox.py, docs/email.md). A trigger puts every new event in the
    # outbox inside the transaction that records it: channel 'all' (the general recipients)
    # and, for an event about a delegation, that delegation's channel too. Events recorded
    # before this migration are not added.
    _script(
        db,
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
        """,
    )


@migrations(name="0004_query_indexes")
def _m0004(db: Database) -> None:
    # Measured on 5 years of hourly checks of 30 sources (bench/history.py): source_health
    # took 12 s (MAX(started_at) read every row of a source), events were always scanned.
    _script(
        db,
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
        """,
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
    _script(
        db,
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
        """,
    )


@migrations(name="0007_instance_id")
def _m0007(db: Database) -> None:
    # A random id per database, made once (docs/email.md): Message-IDs are built from it, so
    # two databases (a reset, a second install) never send different reports under one id.
    # The outbox gets the 'failed' status (a server refused the message for good, or it
    # stayed unconfirmed after email.max_resends re-sends) and counts the re-sends; SQLite
    # cannot change a CHECK constraint in place, so the table is rebuilt (its trigger too).
    _script(
        db,
        f"""
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        INSERT INTO meta (key, value) VALUES ('instance_id', '{uuid.uuid4()}');

        DROP TRIGGER events_to_outbox;
        CREATE TABLE outbox_new (
            id INTEGER PRIMARY KEY,
            event_id INTEGER NOT NULL REFERENCES events(id),
            channel TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'delivered', 'skipped', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            resends INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            message_id TEXT,
            created_at TEXT NOT NULL,
            sending_at TEXT,
            delivered_at TEXT,
            UNIQUE (event_id, channel)
        );
        INSERT INTO outbox_new (id, event_id, channel, status, attempts, last_error, message_id,
                                created_at, sending_at, delivered_at)
        SELECT id, event_id, channel, status, attempts, last_error, message_id, created_at,
               sending_at, delivered_at FROM outbox;
        DROP TABLE outbox;
        ALTER TABLE outbox_new RENAME TO outbox;
        CREATE INDEX outbox_by_status ON outbox(status, channel, event_id);
        CREATE INDEX outbox_by_message ON outbox(message_id);
        CREATE TRIGGER events_to_outbox AFTER INSERT ON events BEGIN
            INSERT INTO outbox (event_id, channel, created_at)
            VALUES (new.id, 'all', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
            INSERT INTO outbox (event_id, channel, created_at)
            SELECT new.id, new.delegation, strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
            WHERE new.delegation IS NOT NULL AND new.delegation != 'all';
        END;
        """,
    )


@migrations(name="0008_delegation_changes_disagreements")
def _m0008(db: Database) -> None:
    # The delegation is the unit (storage/store.py, changes.py): one `changes` row per
    # delegation-level change, however many sources show it; each source's event stays the
    # evidence and names its item (events.change_id). Only an item's first event enters the
    # outbox: a source showing the same change later joins the item without a second alert.
    # Sources that disagree about a delegation attribute (or a page whose stated count and
    # listed names differ) are kept in `disagreement_log`; `disagreements` lists the open
    # ones. `delegation_now` answers "what is this delegation now", with the sources stating
    # each value; `delegation_members_now` the same for members. `source_health` shows a
    # degraded parse (a part of the page unreadable, its facts held).
    _script(
        db,
        """
        CREATE TABLE changes (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            delegation TEXT NOT NULL,
            attribute TEXT NOT NULL,
            scope TEXT NOT NULL DEFAULT '',  -- identity inside the attribute (member, website)
            old TEXT,
            new TEXT,
            old_id TEXT NOT NULL DEFAULT '',  -- identities of old and new (what "same" means)
            new_id TEXT NOT NULL DEFAULT '',
            detected_at TEXT NOT NULL  -- first detected
        );
        CREATE INDEX changes_by_scope ON changes(delegation, attribute, scope, id);
        CREATE INDEX changes_by_time ON changes(detected_at);
        ALTER TABLE events ADD COLUMN change_id INTEGER REFERENCES changes(id);
        CREATE INDEX events_by_change ON events(change_id, id);

        DROP TRIGGER events_to_outbox;
        CREATE TRIGGER events_to_outbox AFTER INSERT ON events
        WHEN new.change_id IS NULL OR NOT EXISTS (
            SELECT 1 FROM events e WHERE e.change_id = new.change_id AND e.id != new.id)
        BEGIN
            INSERT INTO outbox (event_id, channel, created_at)
            VALUES (new.id, 'all', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
            INSERT INTO outbox (event_id, channel, created_at)
            SELECT new.id, new.delegation, strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
            WHERE new.delegation IS NOT NULL AND new.delegation != 'all';
        END;

        CREATE TABLE disagreement_log (
            id INTEGER PRIMARY KEY,
            delegation TEXT NOT NULL,
            attribute TEXT NOT NULL,  -- seats:<chamber>, seats:total, plenipotentiary, head;
                                      -- 'members' for a page's stated count vs listed names
            source_id TEXT REFERENCES sources(id),  -- stated vs listed: the page; else NULL
            competing TEXT NOT NULL,  -- JSON [{"source", "value"}]
            since TEXT NOT NULL,
            ended_at TEXT,
            event_id INTEGER REFERENCES events(id),
            end_event INTEGER REFERENCES events(id)
        );
        CREATE INDEX disagreements_open ON disagreement_log(ended_at, delegation);

        CREATE VIEW disagreements AS
        SELECT d.id, d.delegation, d.attribute,
               CASE WHEN d.source_id IS NULL THEN 'sources' ELSE 'stated_vs_listed' END AS kind,
               d.source_id, d.competing, d.since, d.event_id
        FROM disagreement_log d WHERE d.ended_at IS NULL;

        CREATE VIEW delegation_now AS
        WITH cur AS (
            SELECT substr(f.subject, 12) AS delegation, f.attribute,
                   CASE WHEN f.attribute = 'website' THEN f.key ELSE '' END AS item,
                   CASE WHEN f.key != '' THEN f.key ELSE f.value END AS ident,
                   f.key, f.value, f.source_id, f.last_seen,
                   ROW_NUMBER() OVER (
                       PARTITION BY f.subject, f.attribute,
                           CASE WHEN f.attribute = 'website' THEN f.key ELSE '' END
                       ORDER BY f.last_seen DESC, f.source_id) AS latest
            FROM facts f
            WHERE f.ended_at IS NULL AND f.subject LIKE 'delegation:%'
              AND (f.attribute LIKE 'seats:%'
                   OR f.attribute IN ('plenipotentiary', 'head', 'website'))
        ),
        grouped AS (
            SELECT delegation, attribute, item,
                   COUNT(DISTINCT ident) > 1
                     AND (attribute LIKE 'seats:%' OR MIN(key) != '') AS disagree,
                   MAX(CASE WHEN latest = 1 THEN value END) AS latest_value,
                   json_group_array(DISTINCT value) AS competing,
                   json_group_array(json_object('source', source_id, 'value', value,
                                                'last_confirmed', last_seen)) AS sources,
                   COUNT(*) AS source_count
            FROM cur GROUP BY delegation, attribute, item
        )
        SELECT delegation, attribute, item AS key,
               CASE WHEN disagree THEN NULL ELSE latest_value END AS value,
               disagree, CASE WHEN disagree THEN competing END AS competing_values,
               source_count, sources
        FROM grouped;

        CREATE VIEW delegation_members_now AS
        SELECT substr(subject, 12) AS delegation, key AS name_key, MAX(value) AS name,
               COUNT(*) AS source_count,
               json_group_array(json_object('source', source_id, 'name', value,
                                            'last_confirmed', last_seen)) AS sources
        FROM facts
        WHERE ended_at IS NULL AND attribute = 'member' AND subject LIKE 'delegation:%'
        GROUP BY subject, key;

        CREATE VIEW stated_vs_listed AS
        SELECT substr(t.subject, 12) AS delegation, t.source_id,
               CAST(t.value AS INTEGER) AS stated,
               (SELECT COUNT(*) FROM facts m WHERE m.source_id = t.source_id
                  AND m.subject = t.subject AND m.attribute = 'member'
                  AND m.ended_at IS NULL) AS listed
        FROM facts t
        WHERE t.attribute = 'seats:total' AND t.ended_at IS NULL AND t.subject LIKE 'delegation:%';

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
                    WHEN st.parse_status = 'degraded' THEN 'degraded'
                    WHEN st.parse_status IS NULL THEN 'unknown'
                    ELSE 'ok' END AS health
        FROM sources s LEFT JOIN source_state st ON st.source_id = s.id;
        """,
    )


@migrations(name="0009_fts_like_sqlite_utils_snapshot_text")
def _m0009(db: Database) -> None:
    # 1. news_fts was declared content='news' (single quotes), which sqlite-utils and Datasette
    #    do not recognise ("not configured for full-text search"; ?_search= ignored). Declared
    #    again exactly as sqlite-utils' enable_fts does (content="news", triggers news_ai/ad/au).
    # 2. snapshot_text: the readable text of each distinct body (one row per bodies.sha256,
    #    the page parser's visible lines), with full-text search; filled by the store when a
    #    new body is stored, back-filled here for the bodies already stored.
    from pawatch.storage.bodytext import decompress_body, readable_text

    tokenize = "unicode61 remove_diacritics 2"
    _script(
        db,
        """
        DROP TRIGGER news_ai;
        DROP TRIGGER news_ad;
        DROP TRIGGER news_au;
        DROP TABLE news_fts;
        CREATE TABLE snapshot_text (
            sha256 TEXT PRIMARY KEY REFERENCES bodies(sha256),
            text TEXT NOT NULL
        );
        """,
    )
    db.table("news").enable_fts(
        ["title", "summary", "text"], tokenize=tokenize, create_triggers=True
    )
    rows = db.execute(
        "SELECT b.sha256, b.compression, b.data, "
        "(SELECT content_type FROM snapshots s WHERE s.sha256 = b.sha256 LIMIT 1) FROM bodies b"
    )
    for sha256, compression, data, content_type in rows.fetchall():
        text = readable_text(decompress_body(compression, data), content_type)
        db.execute("INSERT INTO snapshot_text (sha256, text) VALUES (?, ?)", [sha256, text])
    db.table("snapshot_text").enable_fts(["text"], tokenize=tokenize, create_triggers=True)
    _script(
        db,
        """
        -- A snapshot with its readable text: "which snapshot first said 'senators'?"
        CREATE VIEW snapshot_texts AS
        SELECT s.id AS snapshot_id, s.source_id, s.url, s.first_seen, s.last_seen, s.sha256,
               t.text
        FROM snapshots s JOIN snapshot_text t ON t.sha256 = s.sha256;
        """,
    )


@migrations(name="0010_assembly_members")
def _m0010(db: Database) -> None:
    # Each member an Assembly country page lists now, with the national rosters (parser
    # `roster`, same delegation) that list the same person now (by the member fact's key,
    # the name identity): `confirmed`; or the time the last roster stopped listing them:
    # `left_roster` (e.g. after an election); or `unconfirmed` (no roster ever listed them).
    _script(
        db,
        """
        CREATE VIEW assembly_members AS
        SELECT m.delegation, m.source_id, m.name, m.name_key, m.listed_since, m.confirmed_by,
               CASE WHEN m.confirmed_by IS NULL THEN m.left_roster_at END AS left_roster_at,
               CASE WHEN m.confirmed_by IS NOT NULL THEN 'confirmed'
                    WHEN m.left_roster_at IS NOT NULL THEN 'left_roster'
                    ELSE 'unconfirmed' END AS status
        FROM (
            SELECT substr(a.subject, 12) AS delegation, a.source_id, a.value AS name,
                   a.key AS name_key, a.first_seen AS listed_since,
                   (SELECT group_concat(DISTINCT r.source_id) FROM facts r
                      JOIN sources rs ON rs.id = r.source_id
                    WHERE rs.parser = 'roster' AND r.subject = a.subject
                      AND r.attribute = 'member' AND r.key = a.key
                      AND r.ended_at IS NULL) AS confirmed_by,
                   (SELECT MAX(r.ended_at) FROM facts r JOIN sources rs ON rs.id = r.source_id
                    WHERE rs.parser = 'roster' AND r.subject = a.subject
                      AND r.attribute = 'member' AND r.key = a.key) AS left_roster_at
            FROM facts a JOIN sources s ON s.id = a.source_id
            WHERE s.parser = 'delegation-page' AND a.attribute = 'member'
              AND a.subject LIKE 'delegation:%' AND a.ended_at IS NULL
        ) m;
        """,
    )


@migrations(name="0012_fetch_log_final_url")
def _m0012(db: Database) -> None:
    # Where the fetch ended after redirects, when that is not the source's URL (NULL: the
    # same); a move to another host is also a `source_moved` event, once per move.
    db.execute("ALTER TABLE fetch_log ADD COLUMN final_url TEXT")


@migrations(name="0014_pending_disagreements_people")
def _m0014(db: Database) -> None:
    # 1. A disagreement is a finding only once every source involved was checked after it
    #    began (issue 14: the daemon checks sources on different schedules, so one change
    #    reaching the English page at 10:00 and the Russian one at 16:00 is no finding).
    #    `checked_after` is the last fetch_log id of the comparison before the one that first
    #    saw it: a good check of each involved source with a larger id confirms it (a run
    #    that checked them all confirms what it finds at once). Until then the row is pending
    #    (event_id NULL): in `pending_disagreements`, not in `disagreements` nor the outbox;
    #    it ends silently (ended_at set, no event) if the sources converge first.
    _script(
        db,
        """
        ALTER TABLE disagreement_log ADD COLUMN checked_after INTEGER;
        -- the last fetch_log id the last comparison of the sources saw (one row)
        CREATE TABLE disagreement_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            compared_through INTEGER NOT NULL
        );
        INSERT INTO disagreement_state (id, compared_through) VALUES (1, 0);

        DROP VIEW disagreements;
        CREATE VIEW disagreements AS
        SELECT d.id, d.delegation, d.attribute,
               CASE WHEN d.source_id IS NULL THEN 'sources' ELSE 'stated_vs_listed' END AS kind,
               d.source_id, d.competing, d.since, d.event_id
        FROM disagreement_log d WHERE d.ended_at IS NULL AND d.event_id IS NOT NULL;

        CREATE VIEW pending_disagreements AS
        SELECT d.id, d.delegation, d.attribute,
               CASE WHEN d.source_id IS NULL THEN 'sources' ELSE 'stated_vs_listed' END AS kind,
               d.source_id, d.competing, d.since, d.checked_after,
               (SELECT json_group_array(w.source) FROM (
                    SELECT json_extract(c.value, '$.source') AS source
                    FROM json_each(d.competing) c WHERE d.source_id IS NULL
                    UNION SELECT d.source_id WHERE d.source_id IS NOT NULL
                ) w
                WHERE NOT EXISTS (
                    SELECT 1 FROM fetch_log l WHERE l.source_id = w.source
                      AND l.id > COALESCE(d.checked_after, 0) AND l.outcome != 'failed'
                      AND l.parse_status IS NOT 'broken')
                   OR EXISTS (
                    SELECT 1 FROM source_state st WHERE st.source_id = w.source
                      AND st.parse_status = 'broken')
               ) AS awaiting
        FROM disagreement_log d WHERE d.ended_at IS NULL AND d.event_id IS NULL;
        """,
    )
    # 2. People by identity (issue 14): a respelling of a person (same name key, another
    #    spelling) ends one fact and starts the next, at the same moment. `person_periods`
    #    joins a source's consecutive facts of one person (same delegation, attribute and
    #    key; each starting at the time and in the snapshot where the one before ended) into
    #    one period, shown with its latest spelling; `other_names` lists the person's other
    #    spellings on any source of the delegation (Latin on the English site, Cyrillic on
    #    the Russian one), as a JSON array. A fact without a key (stored before keys) is its
    #    own identity.
    #    `representatives` and `members` read it (one period per person per source), and
    #    `delegation_members_now` gains the spellings across sources.
    _script(
        db,
        """
        CREATE VIEW person_periods AS
        WITH person AS (
            SELECT f.id, f.source_id, f.subject, f.attribute, f.key, f.value, f.first_seen,
                   f.ended_at, f.last_seen, f.first_snapshot, f.end_snapshot,
                   CASE WHEN f.key != '' THEN f.key ELSE f.value END AS ident
            FROM facts f
            WHERE f.attribute IN ('member', 'plenipotentiary', 'head')
              AND f.subject LIKE 'delegation:%'
        ),
        marked AS (  -- a fact continues the one before when it began as that one ended,
                     -- in the same snapshot (a respelling); a gap starts a new period
            SELECT p.*,
                   CASE WHEN LAG(p.ended_at) OVER w IS p.first_seen
                         AND LAG(p.end_snapshot) OVER w = p.first_snapshot
                        THEN 0 ELSE 1 END AS starts
            FROM person p
            WINDOW w AS (PARTITION BY p.source_id, p.subject, p.attribute, p.ident
                         ORDER BY p.first_seen, p.id)
        ),
        numbered AS (
            SELECT m.*,
                   SUM(m.starts) OVER (
                       PARTITION BY m.source_id, m.subject, m.attribute, m.ident
                       ORDER BY m.first_seen, m.id ROWS UNBOUNDED PRECEDING) AS period
            FROM marked m
        ),
        ranked AS (
            SELECT n.*,
                   ROW_NUMBER() OVER (
                       PARTITION BY n.source_id, n.subject, n.attribute, n.ident, n.period
                       ORDER BY n.first_seen DESC, n.id DESC) AS from_last
            FROM numbered n
        ),
        periods AS (
            SELECT subject, source_id, attribute, key,
                   MAX(CASE WHEN from_last = 1 THEN value END) AS name,
                   MIN(first_seen) AS valid_from,
                   MAX(CASE WHEN from_last = 1 THEN ended_at END) AS valid_to,
                   MAX(CASE WHEN from_last = 1 THEN last_seen END) AS last_seen,
                   MIN(first_snapshot) AS first_snapshot,
                   MAX(CASE WHEN from_last = 1 THEN end_snapshot END) AS end_snapshot,
                   COUNT(*) AS facts
            FROM ranked
            GROUP BY source_id, subject, attribute, ident, period
        )
        SELECT substr(p.subject, 12) AS delegation, p.source_id, p.attribute, p.name,
               p.key AS name_key,
               (SELECT json_group_array(o.value) FROM (
                    SELECT DISTINCT o.value FROM facts o
                    WHERE p.key != '' AND o.subject = p.subject AND o.key = p.key
                      AND o.attribute IN ('member', 'plenipotentiary', 'head')
                      AND o.value != p.name
                    ORDER BY o.value) o) AS other_names,
               p.valid_from, p.valid_to, p.last_seen, p.first_snapshot, p.end_snapshot, p.facts
        FROM periods p;

        DROP VIEW representatives;
        CREATE VIEW representatives AS
        SELECT p.delegation, p.source_id, p.name,
               (SELECT r.value FROM facts r WHERE r.source_id = p.source_id
                  AND r.subject = 'delegation:' || p.delegation
                  AND r.attribute = 'plenipotentiary_role'
                  AND r.first_seen < COALESCE(p.valid_to, '9999')
                  AND (r.ended_at IS NULL OR r.ended_at > p.valid_from)
                ORDER BY r.first_seen DESC, r.id DESC LIMIT 1) AS role,
               p.valid_from, p.valid_to, p.last_seen, p.first_snapshot, p.end_snapshot,
               p.name_key, p.other_names
        FROM person_periods p WHERE p.attribute = 'plenipotentiary';

        DROP VIEW members;
        CREATE VIEW members AS
        SELECT delegation, source_id, name, name_key, valid_from, valid_to, last_seen,
               first_snapshot, end_snapshot, other_names
        FROM person_periods WHERE attribute = 'member';

        DROP VIEW delegation_members_now;
        CREATE VIEW delegation_members_now AS
        WITH cur AS (
            SELECT subject, key, value, source_id, last_seen,
                   ROW_NUMBER() OVER (PARTITION BY subject, key
                                      ORDER BY last_seen DESC, source_id) AS latest
            FROM facts
            WHERE ended_at IS NULL AND attribute = 'member' AND subject LIKE 'delegation:%'
        )
        SELECT substr(c.subject, 12) AS delegation, c.key AS name_key,
               MAX(CASE WHEN c.latest = 1 THEN c.value END) AS name,
               COUNT(*) AS source_count,
               json_group_array(json_object('source', c.source_id, 'name', c.value,
                                            'last_confirmed', c.last_seen)) AS sources,
               (SELECT json_group_array(s.value) FROM (
                    SELECT DISTINCT d.value FROM cur d
                    WHERE d.subject = c.subject AND d.key = c.key ORDER BY d.value) s)
                 AS spellings
        FROM cur c
        GROUP BY c.subject, c.key;
        """,
    )
    # 3. A representative's respelling is no change of person, but a note: `respellings`
    #    lists each time a source's shown spelling of a plenipotentiary or head changed
    #    inside one period (as `person_periods` joins them): old -> new, when, and the
    #    snapshots before and after. No event, nothing in the outbox; `history` shows them
    #    as notes. (A member's respelling stays a `member_renamed` event.)
    _script(
        db,
        """
        CREATE VIEW respellings AS
        SELECT delegation, source_id, attribute, name_key, old, new, at, before_snapshot,
               after_snapshot
        FROM (
            SELECT substr(f.subject, 12) AS delegation, f.source_id, f.attribute,
                   f.key AS name_key, LAG(f.value) OVER w AS old, f.value AS new,
                   f.first_seen AS at, LAG(f.ended_at) OVER w AS before_end,
                   LAG(f.end_snapshot) OVER w AS before_end_snapshot,
                   LAG(f.last_snapshot) OVER w AS before_snapshot,
                   f.first_snapshot AS after_snapshot
            FROM facts f
            WHERE f.key != '' AND f.attribute IN ('plenipotentiary', 'head')
              AND f.subject LIKE 'delegation:%'
            WINDOW w AS (PARTITION BY f.source_id, f.subject, f.attribute, f.key
                         ORDER BY f.first_seen, f.id)
        )
        WHERE before_end IS at AND before_end_snapshot = after_snapshot AND old != new;
        """,
    )


@migrations(name="0015_outbox_failures")
def _m0015(db: Database) -> None:
    # Definite temporary failures of a row in a row (a 4xx to the message, a refused
    # connection, a webhook's HTTP 5xx/408/429): past `max_resends` the rows are `failed`
    # instead of being retried for ever (storage/outbox.py, Outbox.settle).
    db.execute("ALTER TABLE outbox ADD COLUMN failures INTEGER NOT NULL DEFAULT 0")


@migrations(name="0016_snapshot_text_batch_index")
def _m0016(db: Database) -> None:
    # The full-text index of snapshot_text is filled in batches (Store.index_texts: at the end
    # of every run and every few hundred new bodies) instead of by a trigger per row: one
    # FTS5 insert of many rows costs a fraction of many one-row inserts, each in its own
    # check's transaction (a 1000-page cold run: 3.6 s -> 2.5 s + 0.6 s). `meta` remembers
    # the last rowid indexed; everything before this migration was indexed by the trigger.
    # The index stays declared as sqlite-utils' enable_fts declares it (content=...), so
    # `sqlite-utils search` and Datasette find it; the delete/update triggers stay.
    _script(
        db,
        """
        DROP TRIGGER snapshot_text_ai;
        INSERT INTO meta (key, value)
        SELECT 'snapshot_text_indexed', CAST(COALESCE(MAX(rowid), 0) AS TEXT) FROM snapshot_text;
        """,
    )


@migrations(name="0017_text_by_line")
def _m0017(db: Database) -> None:
    # The readable text stored by line, deduplicated like bodies: successive versions of a page
    # share almost every line, and the pages of one site share their menus and footers (the
    # 1000-page benchmark: 187,087 lines, 19,099 distinct; 50 MB of text -> 5.4 MB).
    # - text_lines: each distinct line once (hash: storage/bodytext.py line_hash, or after a
    #   collision the next free value: store_lines), with full-text search declared as
    #   sqlite-utils' enable_fts declares it, filled in batches as snapshot_text's was (0016:
    #   Store.index_texts; meta 'text_lines_indexed' is the last id indexed): on 1000 new
    #   pages, indexing each check's new lines in its own transaction cost the writer 0.4 s
    #   more CPU and the run 0.5 s more wall time, a trigger per row 0.4 s more again.
    # - body_text: a body's lines, in order, as a compact JSON array of text_lines ids.
    # - snapshot_text: now a view with the same columns (sha256, text), the lines joined by
    #   "\n" ('' for a body without text), so snapshot_texts and SQL written for it still work.
    # The old table, its index (filled in batches since 0016) and its bookmark go.
    from pawatch.storage.bodytext import line_ids_json, split_lines, store_lines

    _script(
        db,
        """
        CREATE TABLE text_lines (
            id INTEGER PRIMARY KEY,
            hash INTEGER NOT NULL UNIQUE,
            text TEXT NOT NULL
        );
        CREATE TABLE body_text (
            sha256 TEXT PRIMARY KEY REFERENCES bodies(sha256),
            line_ids TEXT NOT NULL
        );
        """,
    )
    conn = db.conn
    known: dict[str, int] = {}
    rows = conn.execute("SELECT sha256, text FROM snapshot_text ORDER BY rowid").fetchall()
    for sha256, text in rows:
        lines = split_lines(text)
        missing = dict.fromkeys(line for line in lines if line not in known)
        if missing:
            known.update(store_lines(conn, missing)[0])
        conn.execute(
            "INSERT INTO body_text (sha256, line_ids) VALUES (?, ?)",
            (sha256, line_ids_json([known[line] for line in lines])),
        )
    db.table("text_lines").enable_fts(  # indexes the lines stored above
        ["text"], tokenize="unicode61 remove_diacritics 2", create_triggers=True
    )
    _script(
        db,
        """
        DROP TRIGGER text_lines_ai;
        INSERT INTO meta (key, value)
        SELECT 'text_lines_indexed', CAST(COALESCE(MAX(id), 0) AS TEXT) FROM text_lines;
        DROP TRIGGER snapshot_text_ad;
        DROP TRIGGER snapshot_text_au;
        DROP TABLE snapshot_text_fts;
        DROP TABLE snapshot_text;
        DELETE FROM meta WHERE key = 'snapshot_text_indexed';
        -- (SQLite 3.40 has no group_concat(... ORDER BY): the ordered subquery keeps the order)
        CREATE VIEW snapshot_text AS
        SELECT b.sha256,
               COALESCE((SELECT group_concat(l.text, char(10))
                         FROM (SELECT t.text FROM json_each(b.line_ids) j
                               JOIN text_lines t ON t.id = j.value ORDER BY j.key) l), '')
               AS text
        FROM body_text b;
        """,
    )
