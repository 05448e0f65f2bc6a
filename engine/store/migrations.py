"""The store's schema, as numbered migrations applied in order, in place.

Each migration is a list of statements written once for both databases; ``{id}``, ``{seq}``, ``{real}``,
``{big}`` and ``{blob}`` become each database's own types (``{seq}``: a key never given twice, not even
after the last row is deleted), and ``{same}`` its equality that holds NULL to NULL. A
store at version N gets migrations N+1, ... applied in one transaction when it is opened, so an old
database upgrades where it lies and keeps its rows. Migrations are only ever appended: a released
one is never edited.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


_VISIT = "serial, recipe, recipe_version, recipe_hash, lot, station, slot, operator, device_id"
_SAME_VISIT = " AND ".join(
    f"v.{c} = a.{c}" if c in ("serial", "recipe", "recipe_version", "recipe_hash", "slot") else f"v.{c} {{same}} a.{c}"
    for c in _VISIT.split(", ")
)
_ATTEMPT = "stage, step, attempt, outcome, started, ended, measurements, error"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "units, attempts, irreversible intents, lots, identity pools, images, releases, audit log",
        (
            """CREATE TABLE units (
                serial TEXT PRIMARY KEY,
                product TEXT,
                recipe TEXT,
                recipe_version INTEGER,
                recipe_hash TEXT,
                lot TEXT,
                lifecycle TEXT,
                status TEXT NOT NULL DEFAULT 'in-route',
                reason TEXT,
                claimed_by TEXT,
                claimed_station TEXT,
                claimed_at {real},
                updated {real} NOT NULL
            )""",
            "CREATE INDEX units_status ON units (status)",
            "CREATE INDEX units_lot ON units (lot)",
            """CREATE TABLE attempts (
                id {id},
                serial TEXT NOT NULL,
                stage TEXT NOT NULL,
                step TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                outcome TEXT NOT NULL,
                started {real} NOT NULL,
                ended {real} NOT NULL,
                recipe TEXT NOT NULL,
                recipe_version INTEGER NOT NULL,
                recipe_hash TEXT NOT NULL,
                lot TEXT,
                station TEXT,
                slot INTEGER NOT NULL,
                operator TEXT,
                measurements TEXT NOT NULL,
                error TEXT,
                device_id TEXT
            )""",
            "CREATE INDEX attempts_unit ON attempts (serial, id)",
            """CREATE TABLE intents (
                id {id},
                serial TEXT NOT NULL,
                stage TEXT NOT NULL,
                step TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                station TEXT,
                slot INTEGER NOT NULL,
                recipe TEXT NOT NULL,
                recipe_version INTEGER NOT NULL,
                recipe_hash TEXT NOT NULL,
                lot TEXT,
                operator TEXT,
                holder TEXT NOT NULL,
                started {real} NOT NULL,
                outcome TEXT,
                ended {real},
                decision TEXT
            )""",
            "CREATE INDEX intents_open ON intents (serial) WHERE outcome IS NULL",
            "CREATE TABLE lots (lot TEXT PRIMARY KEY, hold TEXT, held_at {real})",
            """CREATE TABLE lot_failures (
                lot TEXT NOT NULL, stage TEXT NOT NULL, failures INTEGER NOT NULL, PRIMARY KEY (lot, stage)
            )""",
            "CREATE TABLE identity_pools (pool TEXT PRIMARY KEY, next {big} NOT NULL, last {big} NOT NULL)",
            """CREATE TABLE identities (
                space TEXT NOT NULL,
                value TEXT NOT NULL,
                kind TEXT NOT NULL,
                pool TEXT NOT NULL,
                serial TEXT NOT NULL,
                issued {real} NOT NULL,
                retired INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (space, value)
            )""",
            "CREATE UNIQUE INDEX identities_unit ON identities (serial, kind)",
            """CREATE TABLE images (
                serial TEXT NOT NULL, image TEXT NOT NULL, sha256 TEXT, stage TEXT NOT NULL, written {real} NOT NULL
            )""",
            "CREATE INDEX images_unit ON images (serial)",
            """CREATE TABLE releases (
                recipe_hash TEXT PRIMARY KEY,
                recipe TEXT NOT NULL,
                version INTEGER NOT NULL,
                source TEXT,
                released_by TEXT NOT NULL,
                released_at {real} NOT NULL
            )""",
            """CREATE TABLE audit (
                id {id}, at {real} NOT NULL, by TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL, reason TEXT
            )""",
            "CREATE INDEX audit_subject ON audit (subject, id)",
        ),
    ),
    Migration(
        2,
        "a unit's visit to a station (recipe, lot, station, slot, operator, device) is written once, not per attempt",
        (
            """CREATE TABLE visits (
                id {id},
                serial TEXT NOT NULL,
                recipe TEXT NOT NULL,
                recipe_version INTEGER NOT NULL,
                recipe_hash TEXT NOT NULL,
                lot TEXT,
                station TEXT,
                slot INTEGER NOT NULL,
                operator TEXT,
                device_id TEXT
            )""",
            f"INSERT INTO visits ({_VISIT}) SELECT {_VISIT} FROM attempts GROUP BY {_VISIT} ORDER BY min(id)",
            """CREATE TABLE visit_attempts (
                id {id},
                visit {big} NOT NULL,
                stage TEXT NOT NULL,
                step TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                outcome TEXT NOT NULL,
                started {real} NOT NULL,
                ended {real} NOT NULL,
                measurements TEXT NOT NULL,
                error TEXT
            )""",
            # In the order they were written: the new ids keep it.
            f"INSERT INTO visit_attempts (visit, {_ATTEMPT}) SELECT v.id, "
            + ", ".join(f"a.{c}" for c in _ATTEMPT.split(", "))
            + f" FROM attempts a JOIN visits v ON {_SAME_VISIT} ORDER BY a.id",
            "DROP TABLE attempts",
            "ALTER TABLE visit_attempts RENAME TO attempts",
            "CREATE INDEX visits_unit ON visits (serial)",
            "CREATE INDEX attempts_visit ON attempts (visit, id)",
            # Every attempt with its visit's fields, as version 1 had them, for whoever reads the store in SQL.
            f"""CREATE VIEW attempt_records AS SELECT a.id, {", ".join(f"v.{c}" for c in _VISIT.split(", "))},
                {", ".join(f"a.{c}" for c in _ATTEMPT.split(", "))} FROM attempts a JOIN visits v ON v.id = a.visit""",
        ),
    ),
    Migration(
        3,
        "the line events' outbox: each event written with the record it describes, published after",
        (
            """CREATE TABLE line_events (
                seq {seq},
                unique_id TEXT NOT NULL,
                source TEXT NOT NULL,
                topic TEXT NOT NULL,
                kind TEXT NOT NULL,
                serial TEXT,
                payload {blob} NOT NULL,
                created {real} NOT NULL,
                published {real}
            )""",
            "CREATE INDEX line_events_unpublished ON line_events (source, seq) WHERE published IS NULL",
        ),
    ),
    Migration(
        4,
        "an attempt-ended in the outbox keeps its attempt's id; its payload is built from that row when read",
        # The payload of such a row is empty (the column stays NOT NULL: SQLite cannot alter that in place).
        ("ALTER TABLE line_events ADD COLUMN attempt {big}",),
    ),
    Migration(
        5,
        "each attempt's measurements as rows of their own, written when the line's figures are next read",
        (
            """CREATE TABLE measured (
                attempt {big} NOT NULL,
                pos {big} NOT NULL,
                stage TEXT NOT NULL,
                name TEXT,
                verdict TEXT,
                x {real}
            )""",
            "CREATE UNIQUE INDEX measured_attempt ON measured (attempt, pos)",
            "CREATE INDEX measured_values ON measured (stage, name, x, attempt)",
        ),
    ),
)

LATEST = MIGRATIONS[-1].version
