//! The version counters other processes poll to notice changes.

use super::{Store, StoreError};

/// The catalog and health versions, read together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versions {
    pub catalog: i64,
    pub health: i64,
}

impl Store {
    pub async fn versions(&self) -> Result<Versions, StoreError> {
        let (catalog, health): (i64, i64) =
            sqlx::query_as("SELECT catalog_version, health_version FROM catalog_meta WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(Versions { catalog, health })
    }
}
