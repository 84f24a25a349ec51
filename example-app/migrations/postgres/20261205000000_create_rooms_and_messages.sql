-- Rooms and their messages, with timestamps as TIMESTAMPTZ (`time::OffsetDateTime` in Rust).
CREATE TABLE rooms (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    inserted_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE messages (
    id BIGSERIAL PRIMARY KEY,
    room_id BIGINT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    inserted_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX messages_room_id_index ON messages (room_id);
