//! The repo on a fresh database: the migrations make the schema once, timestamps are stored
//! as timestamps, and a room's messages go with it.

mod in_process;

use example_app::chat::{self, MessageAttrs, RoomAttrs};
use example_app::repo::Backend;
use example_app::{with_pool, Repo};
use in_process::test_db;

#[tokio::test]
async fn migrations_run_once_and_timestamps_are_timestamps() {
    let db = test_db().await;
    let repo = Repo::connect(&db.url).await.expect("first connect migrates");
    // A second connect (another replica, a restart) finds nothing left to run.
    let again = Repo::connect(&db.url).await.expect("second connect");
    let applied: Vec<i64> = with_pool!(again, pool => {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await
            .expect("the migrations table")
    });
    assert_eq!(applied, [20261205000000], "each migration ran once");

    let types: Vec<(String, String)> = match repo.backend() {
        Backend::Postgres => with_pool!(repo, pool => {
            sqlx::query_as(
                "SELECT table_name::text, data_type::text FROM information_schema.columns \
                 WHERE column_name IN ('inserted_at', 'updated_at') ORDER BY table_name, column_name",
            )
            .fetch_all(pool)
            .await
            .expect("column types")
        }),
        Backend::Sqlite => with_pool!(repo, pool => {
            sqlx::query_as(
                "SELECT m.name, p.type FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND p.name IN ('inserted_at', 'updated_at') \
                 ORDER BY m.name, p.name",
            )
            .fetch_all(pool)
            .await
            .expect("column types")
        }),
    };
    let expected = match repo.backend() {
        Backend::Postgres => "timestamp with time zone",
        Backend::Sqlite => "TIMESTAMP",
    };
    let tables: Vec<&str> = types.iter().map(|(table, _)| table.as_str()).collect();
    assert_eq!(tables, ["messages", "rooms", "rooms"], "{types:?}");
    assert!(types.iter().all(|(_, ty)| ty == expected), "{types:?}");

    // What goes in as a time comes back as the same time.
    let room = chat::create_room(&repo, RoomAttrs { name: Some("r".into()) }).await.unwrap();
    let read = chat::get_room(&repo, room.id).await.unwrap().expect("the room");
    assert_eq!(read.inserted_at, room.inserted_at);
    assert_eq!(read.inserted_at.offset(), time::UtcOffset::UTC);
    let age = time::OffsetDateTime::now_utc() - read.inserted_at;
    assert!(age.whole_seconds().abs() < 300, "now-ish: {}", read.inserted_at);

    // Deleting the room deletes its messages (the foreign key cascades on both backends).
    let attrs = MessageAttrs { author: Some("ada".into()), body: Some("hi".into()) };
    chat::create_message(&repo, room.id, attrs).await.unwrap();
    assert_eq!(chat::count_messages(&repo, room.id).await.unwrap(), 1);
    chat::delete_room(&repo, room.id).await.unwrap();
    let left: i64 = with_pool!(repo, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM messages").fetch_one(pool).await.unwrap()
    });
    assert_eq!(left, 0, "the room's messages went with it");
    repo.close().await;
    again.close().await;
}

/// A SQLite database made before the migrations (tables created by hand, timestamps as
/// RFC 3339 text) opens, migrates and reads as before.
#[tokio::test]
async fn a_database_from_before_the_migrations_still_opens() {
    let db = test_db().await;
    if db.url.starts_with("postgres") {
        return; // Only SQLite databases were ever made that way.
    }
    let old = sqlx::SqlitePool::connect(&db.url).await.expect("the old database");
    for ddl in [
        "CREATE TABLE rooms (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, \
         inserted_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, room_id INTEGER NOT NULL \
         REFERENCES rooms(id) ON DELETE CASCADE, author TEXT NOT NULL, body TEXT NOT NULL, \
         inserted_at TEXT NOT NULL)",
        "INSERT INTO rooms (name, inserted_at, updated_at) \
         VALUES ('old', '2026-11-22T01:02:03Z', '2026-11-22T01:02:03Z')",
    ] {
        sqlx::query(ddl).execute(&old).await.expect("the old schema");
    }
    old.close().await;

    let repo = Repo::connect(&db.url).await.expect("migrates over the old tables");
    let rooms = chat::list_rooms(&repo, 0).await.expect("the old room reads");
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].name, "old");
    assert_eq!(example_app::controllers::iso8601(rooms[0].inserted_at), "2026-11-22T01:02:03Z");
    let room = chat::create_room(&repo, RoomAttrs { name: Some("new".into()) }).await.unwrap();
    assert!(room.inserted_at > rooms[0].inserted_at);
    repo.close().await;
}
