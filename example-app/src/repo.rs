//! The repo: one sqlx pool for SQLite or Postgres, its schema and the way queries reach it.
//!
//! The schema is in `migrations/` (one directory per backend, embedded in the binary with
//! `sqlx::migrate!` and run at connect). Queries are written once and run on either backend's
//! typed pool through [`with_pool!`](crate::with_pool), so rows decode into real types:
//! timestamps are `time::OffsetDateTime` (`TIMESTAMPTZ` on Postgres, ISO 8601 text on SQLite,
//! which has no timestamp type). The SQL sticks to what both accept (`$N` placeholders,
//! `RETURNING`).

use std::str::FromStr;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

/// The database URL used when `DATABASE_URL` is unset: a SQLite file in the current directory,
/// created on first run.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://fawkes_dev.db?mode=rwc";

/// The SQL dialect behind a database URL, which picks the pool and the migrations.
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

/// The pool of one backend.
#[derive(Debug, Clone)]
pub enum Pool {
    /// A SQLite database.
    Sqlite(SqlitePool),
    /// A Postgres database.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the repo's typed pool, whichever backend it is: the
/// query is written once and compiled for both.
///
/// # Examples
///
/// ```no_run
/// # async fn run(repo: &example_app::Repo) -> Result<(), sqlx::Error> {
/// let rooms: i64 = example_app::with_pool!(repo, pool => {
///     sqlx::query_scalar("SELECT COUNT(*) FROM rooms").fetch_one(pool).await?
/// });
/// # Ok(())
/// # }
/// ```
#[macro_export]
macro_rules! with_pool {
    ($repo:expr, $pool:ident => $body:expr) => {
        match $repo.pool() {
            $crate::repo::Pool::Sqlite($pool) => $body,
            $crate::repo::Pool::Postgres($pool) => $body,
        }
    };
}

/// A handle to the database pool; clones share it.
#[derive(Debug, Clone)]
pub struct Repo {
    pool: Pool,
}

impl Repo {
    /// Connects to `database_url` and runs the migrations it has not run yet.
    ///
    /// # Errors
    ///
    /// When the URL is not SQLite or Postgres, the database is unreachable, or a migration
    /// fails.
    pub async fn connect(database_url: &str) -> anyhow::Result<Self> {
        let pool = match database_url.parse::<Backend>()? {
            Backend::Sqlite => {
                // Foreign keys on, so deleting a room deletes its messages.
                let options = SqliteConnectOptions::from_str(database_url)?.foreign_keys(true);
                let pool =
                    SqlitePoolOptions::new().max_connections(10).connect_with(options).await?;
                sqlx::migrate!("migrations/sqlite").run(&pool).await?;
                Pool::Sqlite(pool)
            }
            Backend::Postgres => {
                let pool = PgPoolOptions::new().max_connections(10).connect(database_url).await?;
                sqlx::migrate!("migrations/postgres").run(&pool).await?;
                Pool::Postgres(pool)
            }
        };
        Ok(Self { pool })
    }

    /// The pool, for queries (see [`with_pool!`](crate::with_pool)).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The backend the pool talks to.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every connection; pending queries finish first.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}
