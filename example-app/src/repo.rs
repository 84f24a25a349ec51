//! The repo: one sqlx pool for SQLite or Postgres, its schema, and the plug that hands it to
//! controllers.
//!
//! Queries go through `sqlx::any` so one binary speaks both backends; the SQL sticks to what
//! both accept (`$N` placeholders, `RETURNING`, ISO 8601 timestamps stored as text).

use std::cell::RefCell;
use std::str::FromStr;

use fawkes::{Conn, Plug};
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

/// Assigns the [`Repo`] to every conn that passes, for controllers to read with
/// `conn.get_assign::<Repo>()`.
#[derive(Debug, Clone)]
pub struct PutRepo(Repo);

impl Plug for PutRepo {
    async fn call(&self, conn: Conn) -> Conn {
        conn.assign(self.0.clone())
    }
}

// How the repo reaches the router. `AppRouter::new()` takes no arguments and evaluates each
// plug expression once, synchronously, on the calling thread. `crate::router::build(repo)` puts
// the repo in this slot, calls `new()`, and clears the slot; the `put_repo()` plug expression
// takes it from there. Unlike a process-wide `OnceLock`, every router gets the repo it was
// built with, so tests can run side by side on their own databases.
thread_local! {
    static BUILDING_WITH: RefCell<Option<Repo>> = const { RefCell::new(None) };
}

/// Makes `repo` the one [`put_repo`] hands out while `build` runs on this thread.
pub(crate) fn building_with<T>(repo: Repo, build: impl FnOnce() -> T) -> T {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            BUILDING_WITH.with(|slot| slot.borrow_mut().take());
        }
    }
    BUILDING_WITH.with(|slot| *slot.borrow_mut() = Some(repo));
    let _clear = Clear;
    build()
}

/// The plug that assigns the repo the router is being built with.
///
/// # Panics
///
/// When called outside [`crate::router::build`], such as by a bare `AppRouter::new()`: a router
/// without a database is a start-up mistake, not a request-time failure.
#[track_caller]
pub fn put_repo() -> PutRepo {
    let repo = BUILDING_WITH.with(|slot| slot.borrow().clone());
    PutRepo(repo.expect("AppRouter needs a repo: build it with example_app::router::build(repo)"))
}
