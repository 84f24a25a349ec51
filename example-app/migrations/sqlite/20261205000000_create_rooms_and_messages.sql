-- Rooms and their messages. SQLite has no timestamp type of its own: sqlx stores a
-- `time::OffsetDateTime` as ISO 8601 text, which sorts in time order.
-- IF NOT EXISTS: a database made before migrations existed already has these tables.
CREATE TABLE IF NOT EXISTS rooms (
    -- AUTOINCREMENT keeps the ids of deleted rows from being handed out again, as a Postgres
    -- sequence does.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    inserted_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    inserted_at TIMESTAMP NOT NULL
);

CREATE INDEX IF NOT EXISTS messages_room_id_index ON messages (room_id);
