//! Stores for tests, on either engine: a fresh database on the PostgreSQL server the test run was
//! given (`FREEROUTER_TEST_POSTGRES`, an admin URL; `.ci/run` starts a private one), so tests run
//! in parallel without seeing each other's rows. Without that variable the PostgreSQL half of a
//! test is skipped with a message, except under CI, where it fails: CI must test both engines.

use sqlx::{Connection, Executor};

/// The variable naming the test PostgreSQL server (a superuser's URL).
pub const POSTGRES_VAR: &str = "FREEROUTER_TEST_POSTGRES";

/// The URL of a new, empty database on the test server, or `None` (skip) outside CI when no
/// server was given.
///
/// # Panics
/// Under CI (`CI=true`) without a server, or when the server refuses: a test that silently
/// skipped PostgreSQL there would prove nothing.
pub async fn fresh_postgres_url(label: &str) -> Option<String> {
    let Ok(admin) = std::env::var(POSTGRES_VAR) else {
        let under_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
        assert!(
            !under_ci,
            "{POSTGRES_VAR} is not set under CI: the PostgreSQL tests cannot run (`.ci/run` starts a server)"
        );
        eprintln!("skipped on PostgreSQL ({label}): set {POSTGRES_VAR} to a server's admin URL");
        return None;
    };
    let url = create_database(&admin, label)
        .await
        .unwrap_or_else(|e| panic!("a test database on the {POSTGRES_VAR} server: {e}"));
    Some(url)
}

/// Creates a new, empty database named after `label` on the server `admin` names (a user allowed
/// to create databases) and returns its URL.
pub async fn create_database(admin: &str, label: &str) -> Result<String, sqlx::Error> {
    let name = format!(
        "fr_{}_{}",
        label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(24)
            .collect::<String>()
            .to_ascii_lowercase(),
        uuid::Uuid::new_v4().simple()
    );
    let mut admin_conn = sqlx::PgConnection::connect(admin).await?;
    admin_conn
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await?;
    let _ = admin_conn.close().await;
    let mut url = url::Url::parse(admin).map_err(|e| sqlx::Error::Configuration(e.into()))?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// Runs one async test body on a fresh SQLite file and on a fresh PostgreSQL database, as two
/// tests named `<test>::on_sqlite` and `<test>::on_postgres`. The body gets the open `Store`.
#[cfg(test)]
macro_rules! on_both_backends {
    ($(#[$meta:meta])* async fn $name:ident($store:ident: Store) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($store: $crate::store::Store) $body

            #[tokio::test]
            async fn on_sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let store = $crate::store::Store::open(
                    &dir.path().join("test.db"),
                    std::time::Duration::from_secs(5),
                )
                .await
                .unwrap();
                run(store).await
            }

            #[tokio::test]
            async fn on_postgres() {
                let Some(url) =
                    $crate::store::testing::fresh_postgres_url(stringify!($name)).await
                else {
                    return;
                };
                let store = $crate::store::Store::open(
                    $crate::store::Database::parse(&url),
                    std::time::Duration::from_secs(5),
                )
                .await
                .unwrap();
                run(store).await
            }
        }
    };
}

#[cfg(test)]
pub(crate) use on_both_backends;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Database, Store};
    use std::time::Duration;

    /// Four processes' worth of stores opening one new database at the same moment.
    async fn open_at_once(database: Database) {
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let database = database.clone();
                tokio::spawn(async move { Store::open(database, Duration::from_secs(5)).await })
            })
            .collect();
        for open in opens {
            let store = open
                .await
                .unwrap()
                .expect("every process finds the schema in place");
            assert_eq!(store.list_routes().await.unwrap(), Vec::new());
            store.versions().await.unwrap();
        }
    }

    #[tokio::test]
    async fn several_processes_opening_a_new_postgres_database_at_once_all_find_it_migrated() {
        let Some(url) = fresh_postgres_url("migrate_race").await else {
            return;
        };
        open_at_once(Database::parse(&url)).await;
    }

    #[tokio::test]
    async fn several_processes_opening_a_new_sqlite_file_at_once_all_find_it_migrated() {
        let dir = tempfile::tempdir().unwrap();
        open_at_once(Database::Sqlite(dir.path().join("race.db"))).await;
    }
}
