//! Stored Responses (`store: true` while `storage.responses_retention_hours` > 0): saved with an
//! expiry, read only before it; saving also deletes what has expired, so the table stays as
//! large as the retention window's traffic.

use super::{Store, StoreError};
use crate::time::EpochMs;

/// A stored response: the object as answered and the conversation a follow-up continues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub response: String,
    pub conversation: String,
}

impl Store {
    /// Saves a response until `expires_ms` (replacing one of the same id), after deleting the
    /// expired ones.
    pub async fn save_response(
        &self,
        id: &str,
        now: EpochMs,
        expires_ms: EpochMs,
        stored: &StoredResponse,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM stored_responses WHERE expires_ms <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO stored_responses (id, created_ms, expires_ms, response, conversation) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET created_ms = excluded.created_ms, \
                 expires_ms = excluded.expires_ms, response = excluded.response, \
                 conversation = excluded.conversation",
        )
        .bind(id)
        .bind(now)
        .bind(expires_ms)
        .bind(&stored.response)
        .bind(&stored.conversation)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A response not yet expired at `now`.
    pub async fn stored_response(
        &self,
        id: &str,
        now: EpochMs,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT response, conversation FROM stored_responses WHERE id = $1 AND expires_ms > $2",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(response, conversation)| StoredResponse {
            response,
            conversation,
        }))
    }

    /// Deletes a response; whether there was one (expired ones count as gone).
    pub async fn delete_response(&self, id: &str, now: EpochMs) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM stored_responses WHERE id = $1 AND expires_ms > $2")
            .bind(id)
            .bind(now)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::on_both_backends;

    fn stored(text: &str) -> StoredResponse {
        StoredResponse {
            response: format!("{{\"id\":\"{text}\"}}"),
            conversation: "[]".into(),
        }
    }

    on_both_backends! {
        async fn a_response_is_read_back_until_it_expires_then_trimmed_by_the_next_save(store: Store) {
            store
                .save_response("resp_a", 1_000, 5_000, &stored("a"))
                .await
                .unwrap();
            assert_eq!(
                store.stored_response("resp_a", 4_999).await.unwrap(),
                Some(stored("a"))
            );
            assert_eq!(store.stored_response("resp_a", 5_000).await.unwrap(), None);
            assert_eq!(store.stored_response("resp_b", 1_000).await.unwrap(), None);
            store
                .save_response("resp_b", 6_000, 9_000, &stored("b"))
                .await
                .unwrap();
            let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stored_responses")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            assert_eq!(rows, 1, "the expired one went with the next save");
    }
    }

    on_both_backends! {
        async fn a_deleted_response_is_gone_and_deleting_twice_says_so(store: Store) {
            store
                .save_response("resp_a", 1_000, 5_000, &stored("a"))
                .await
                .unwrap();
            assert!(store.delete_response("resp_a", 2_000).await.unwrap());
            assert!(!store.delete_response("resp_a", 2_000).await.unwrap());
            assert_eq!(store.stored_response("resp_a", 2_000).await.unwrap(), None);
    }
    }
}
