//! Where the store lives: a SQLite file (the embedded default) or a PostgreSQL server shared by
//! several hosts. `storage.database` and `adminctl --db` take either; the backend follows the URL.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::path::{Path, PathBuf};

/// The engine behind a [`Database`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A SQLite path (`./data/freerouter.db`, `sqlite://./data/freerouter.db`) or a PostgreSQL URL
/// (`postgres://user:password@host:5432/freerouter`). Shown with its password hidden.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Database {
    /// Reads what a user wrote: a `postgres://` or `postgresql://` URL, a `sqlite://` URL, or a path.
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Database::Postgres(text.to_string());
        }
        let path = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"))
            .unwrap_or(text);
        let path = path.split('?').next().unwrap_or(path);
        Database::Sqlite(PathBuf::from(path))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// The file, for a SQLite store.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Database::Sqlite(path) => Some(path),
            Database::Postgres(_) => None,
        }
    }

    /// The URL with any password replaced by `***`, for logs and listings.
    pub fn redacted(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => match url::Url::parse(url) {
                Ok(mut parsed) if parsed.password().is_some() => {
                    let _ = parsed.set_password(Some("***"));
                    parsed.to_string()
                }
                Ok(parsed) => parsed.to_string(),
                Err(_) => "postgres://(unparsable URL)".to_string(),
            },
        }
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Database({})", self.redacted())
    }
}

impl From<&Path> for Database {
    fn from(path: &Path) -> Self {
        Database::Sqlite(path.to_path_buf())
    }
}

impl From<PathBuf> for Database {
    fn from(path: PathBuf) -> Self {
        Database::Sqlite(path)
    }
}

impl From<&PathBuf> for Database {
    fn from(path: &PathBuf) -> Self {
        Database::Sqlite(path.clone())
    }
}

impl From<&Database> for Database {
    fn from(database: &Database) -> Self {
        database.clone()
    }
}

impl From<&str> for Database {
    fn from(text: &str) -> Self {
        Database::parse(text)
    }
}

impl std::str::FromStr for Database {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Database::parse(text))
    }
}

impl<'de> Deserialize<'de> for Database {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.trim().is_empty() {
            return Err(serde::de::Error::custom(
                "storage.database is empty: give a SQLite path or a postgres:// URL",
            ));
        }
        Ok(Database::parse(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_selects_postgres_and_a_path_or_sqlite_url_selects_sqlite() {
        assert_eq!(
            Database::parse("postgres://u@h:5432/db").backend(),
            Backend::Postgres
        );
        assert_eq!(
            Database::parse("postgresql://u@h/db").backend(),
            Backend::Postgres
        );
        assert_eq!(
            Database::parse("./data/freerouter.db"),
            Database::Sqlite(PathBuf::from("./data/freerouter.db"))
        );
        assert_eq!(
            Database::parse("sqlite:///var/lib/fr.db?mode=rwc"),
            Database::Sqlite(PathBuf::from("/var/lib/fr.db"))
        );
        assert_eq!(
            Database::parse("sqlite://data/fr.db"),
            Database::Sqlite(PathBuf::from("data/fr.db"))
        );
    }

    #[test]
    fn a_postgres_password_never_shows_when_the_database_is_printed() {
        let database = Database::parse("postgres://fr:s3cret@db.lan:5432/freerouter");
        assert_eq!(
            database.to_string(),
            "postgres://fr:***@db.lan:5432/freerouter"
        );
        assert!(!format!("{database:?}").contains("s3cret"));
    }
}
