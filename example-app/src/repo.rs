//! The repo: one sqlx pool for SQLite or Postgres, and its schema.
//!
//! Queries go through `sqlx::any` so one binary speaks both backends; the SQL sticks to what
//! both accept (`$N` placeholders, `RETURNING`, ISO 8601 timestamps stored as text).

use std::str::FromStr;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

/// The database URL used when `DATABASE_URL` is unset: a SQLite file in the current directory,
/// created on first run.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://fawkes_dev.db?mode=rwc";

/// The SQL dialect behind a database URL, which picks the DDL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite:` URLs.
    Sqlite,
    /// `postgres:` and `postgresql:` URLs.
    Postgres,
}

impl FromStr for Backend {
    type Err = anyhow::Error;

    fn from_str(url: &str) -> anyhow::Result<Self> {
        let scheme = url.split(':').next().unwrap_or_default().to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => anyhow::bail!(
                "unsupported database URL scheme `{scheme}`: use sqlite: or postgres:"
            ),
        }
    }
}

/// A handle to the database pool; clones share it.
#[derive(Debug, Clone)]
pub struct Repo {
    pool: AnyPool,
    backend: Backend,
}

impl Repo {
    /// Connects to `database_url` and creates the schema if it is missing.
    ///
    /// # Errors
    ///
    /// When the URL is not SQLite or Postgres, the database is unreachable, or the schema
    /// cannot be created.
    pub async fn connect(database_url: &str) -> anyhow::Result<Self> {
        let backend: Backend = database_url.parse()?;
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(10).connect(database_url).await?;
        let repo = Self { pool, backend };
        repo.create_schema().await?;
        Ok(repo)
    }

    /// The pool, for queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The backend the pool talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection; pending queries finish first.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn create_schema(&self) -> anyhow::Result<()> {
        // One statement per query: the extended protocol Postgres uses for parameterised
        // queries refuses several at once.
        let ddl: &[&str] = match self.backend {
            // AUTOINCREMENT keeps ids of deleted rows from being handed out again, as a
            // Postgres sequence does.
            Backend::Sqlite => &[
                "CREATE TABLE IF NOT EXISTS rooms (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    name TEXT NOT NULL,
                    inserted_at TEXT NOT NULL,
                    updated_at TEXT NOT NULL
                )",
                "CREATE TABLE IF NOT EXISTS messages (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    room_id INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
                    author TEXT NOT NULL,
                    body TEXT NOT NULL,
                    inserted_at TEXT NOT NULL
                )",
                "CREATE INDEX IF NOT EXISTS messages_room_id_index ON messages (room_id)",
            ],
            Backend::Postgres => &[
                "CREATE TABLE IF NOT EXISTS rooms (
                    id BIGSERIAL PRIMARY KEY,
                    name TEXT NOT NULL,
                    inserted_at TEXT NOT NULL,
                    updated_at TEXT NOT NULL
                )",
                "CREATE TABLE IF NOT EXISTS messages (
                    id BIGSERIAL PRIMARY KEY,
                    room_id BIGINT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
                    author TEXT NOT NULL,
                    body TEXT NOT NULL,
                    inserted_at TEXT NOT NULL
                )",
                "CREATE INDEX IF NOT EXISTS messages_room_id_index ON messages (room_id)",
            ],
        };
        for statement in ddl {
            sqlx::query(statement).execute(&self.pool).await?;
        }
        Ok(())
    }
}
