//! What the in-process tests share: a fresh database per test, and timestamp checks.
//!
//! Each test gets its own SQLite file in the temp dir. With `EXAMPLE_APP_TEST_POSTGRES` set to
//! a Postgres URL the tests run on Postgres instead, each in a database of its own created
//! through that URL.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use sqlx::Connection as _;

/// A database for one test, removed when dropped.
pub(crate) struct TestDb {
    pub(crate) url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                // Drop runs inside the test's runtime, which cannot be blocked on: use a thread
                // with a runtime of its own. FORCE ends the pool's connections still open.
                let (admin_url, name) = (admin_url.clone(), name.clone());
                let dropped = std::thread::spawn(move || -> anyhow::Result<()> {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    rt.block_on(async {
                        let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        sqlx::query(&sql).execute(&mut admin).await?;
                        Ok(())
                    })
                })
                .join();
                if let Ok(Err(err)) = dropped {
                    eprintln!("could not drop test database: {err}");
                }
            }
        }
    }
}

pub(crate) async fn test_db() -> TestDb {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let unique = format!("{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    if let Ok(admin_url) = std::env::var("EXAMPLE_APP_TEST_POSTGRES") {
        let name = format!("fawkes_example_test_{unique}");
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("postgres reachable");
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
        let (base, query) = admin_url.split_once('?').unwrap_or((&admin_url, ""));
        let base = &base[..base.rfind('/').expect("postgres URL has a path")];
        let query = if query.is_empty() { String::new() } else { format!("?{query}") };
        let url = format!("{base}/{name}{query}");
        return TestDb { url, cleanup: Cleanup::Postgres { admin_url, name } };
    }
    let dir = std::env::temp_dir().join(format!("fawkes-example-test-{unique}"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("test.db").display());
    TestDb { url, cleanup: Cleanup::Dir(dir) }
}

/// Asserts a Phoenix-style UTC timestamp to the second (`2026-11-22T01:02:03Z`) and returns it.
#[track_caller]
#[allow(dead_code)] // Not every test file reads timestamps.
pub(crate) fn assert_timestamp(value: &Value) -> String {
    let text = value.as_str().expect("timestamp is a string").to_owned();
    let format = time::format_description::well_known::Rfc3339;
    let parsed = time::OffsetDateTime::parse(&text, &format).expect("timestamp is ISO 8601");
    assert_eq!(parsed.offset(), time::UtcOffset::UTC, "{text}");
    assert!(text.len() == 20 && text.ends_with('Z'), "no fraction, Z suffix: {text}");
    let age = time::OffsetDateTime::now_utc() - parsed;
    assert!(age.whole_seconds().abs() < 300, "timestamp is now-ish: {text}");
    text
}
