//! Supervisor verdicts on whether a model is a free chat model, cached with an expiry.

use super::{Store, StoreError};
use crate::time::EpochMs;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub provider: String,
    pub upstream_model: String,
    pub free_chat_model: bool,
    /// `high`, `medium`, `low`, or `unparsable`.
    pub confidence: String,
    pub reason: String,
    pub sources: Vec<String>,
    pub asked_route: String,
    pub created_ms: EpochMs,
    pub expires_ms: EpochMs,
}

type VerdictRow = (
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    i64,
    i64,
);

impl Store {
    pub async fn save_verdict(&self, verdict: &Verdict) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO supervisor_verdicts
                 (provider, upstream_model, free_chat_model, confidence, reason, sources, asked_route, created_ms, expires_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (provider, upstream_model) DO UPDATE SET
                 free_chat_model = excluded.free_chat_model, confidence = excluded.confidence,
                 reason = excluded.reason, sources = excluded.sources,
                 asked_route = excluded.asked_route, created_ms = excluded.created_ms,
                 expires_ms = excluded.expires_ms",
        )
        .bind(&verdict.provider)
        .bind(&verdict.upstream_model)
        .bind(i64::from(verdict.free_chat_model))
        .bind(&verdict.confidence)
        .bind(&verdict.reason)
        .bind(serde_json::to_string(&verdict.sources).unwrap_or_else(|_| "[]".into()))
        .bind(&verdict.asked_route)
        .bind(verdict.created_ms)
        .bind(verdict.expires_ms)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The cached verdict on a model, unless it has expired.
    pub async fn verdict(
        &self,
        provider: &str,
        upstream_model: &str,
        now: EpochMs,
    ) -> Result<Option<Verdict>, StoreError> {
        let row: Option<VerdictRow> = sqlx::query_as(
            "SELECT provider, upstream_model, free_chat_model, confidence, reason, sources, asked_route, created_ms, expires_ms
             FROM supervisor_verdicts WHERE provider = $1 AND upstream_model = $2 AND expires_ms > $3",
        )
        .bind(provider)
        .bind(upstream_model)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Verdict {
            provider: r.0,
            upstream_model: r.1,
            free_chat_model: r.2 != 0,
            confidence: r.3,
            reason: r.4,
            sources: serde_json::from_str(&r.5).unwrap_or_default(),
            asked_route: r.6,
            created_ms: r.7,
            expires_ms: r.8,
        }))
    }
}
