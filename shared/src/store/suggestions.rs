//! Suggestions: what the maintainer found (`remove_route`, `clear_stale`, `add_route`), with
//! their evidence, pending until applied (by auto-maintenance or a human) or rejected.

use super::{Store, StoreError};
use crate::time::EpochMs;
use serde::Serialize;
use sqlx::Row;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionKind {
    RemoveRoute,
    ClearStale,
    AddRoute,
}

impl SuggestionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionKind::RemoveRoute => "remove_route",
            SuggestionKind::ClearStale => "clear_stale",
            SuggestionKind::AddRoute => "add_route",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            SuggestionKind::RemoveRoute,
            SuggestionKind::ClearStale,
            SuggestionKind::AddRoute,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionStatus {
    Pending,
    Applied,
    Rejected,
}

impl SuggestionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionStatus::Pending => "pending",
            SuggestionStatus::Applied => "applied",
            SuggestionStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            SuggestionStatus::Pending,
            SuggestionStatus::Applied,
            SuggestionStatus::Rejected,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Suggestion {
    pub id: i64,
    pub kind: SuggestionKind,
    pub route_id: String,
    pub provider: String,
    pub upstream_model: String,
    pub status: SuggestionStatus,
    pub evidence: serde_json::Value,
    pub created_ms: EpochMs,
    pub seen_ms: EpochMs,
    pub decided_ms: Option<EpochMs>,
    pub decided_by: Option<String>,
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Suggestion, StoreError> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let evidence: String = row.try_get("evidence")?;
    Ok(Suggestion {
        id: row.try_get("id")?,
        kind: SuggestionKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("suggestion kind {kind}")))?,
        status: SuggestionStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("suggestion status {status}")))?,
        evidence: serde_json::from_str(&evidence).unwrap_or(serde_json::Value::String(evidence)),
        route_id: row.try_get("route_id")?,
        provider: row.try_get("provider")?,
        upstream_model: row.try_get("upstream_model")?,
        created_ms: row.try_get("created_ms")?,
        seen_ms: row.try_get("seen_ms")?,
        decided_ms: row.try_get("decided_ms")?,
        decided_by: row.try_get("decided_by")?,
    })
}

impl Store {
    /// Records a pending suggestion, or refreshes the evidence of the one already pending.
    pub async fn suggest(
        &self,
        kind: SuggestionKind,
        route_id: &str,
        provider: &str,
        upstream_model: &str,
        evidence: &serde_json::Value,
        now: EpochMs,
    ) -> Result<i64, StoreError> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO suggestions (kind, route_id, provider, upstream_model, status, evidence, created_ms, seen_ms)
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7)
             ON CONFLICT (kind, route_id) WHERE status = 'pending'
             DO UPDATE SET evidence = excluded.evidence, seen_ms = excluded.seen_ms
             RETURNING id",
        )
        .bind(kind.as_str())
        .bind(route_id)
        .bind(provider)
        .bind(upstream_model)
        .bind(evidence.to_string())
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Marks a suggestion applied or rejected; returns whether it was pending.
    pub async fn decide_suggestion(
        &self,
        id: i64,
        status: SuggestionStatus,
        decided_by: &str,
        now: EpochMs,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE suggestions SET status = $1, decided_ms = $2, decided_by = $3 WHERE id = $4 AND status = 'pending'",
        )
        .bind(status.as_str())
        .bind(now)
        .bind(decided_by)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Suggestions, newest first; only those with `status` when given.
    pub async fn suggestions(
        &self,
        status: Option<SuggestionStatus>,
    ) -> Result<Vec<Suggestion>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, route_id, provider, upstream_model, status, evidence, created_ms, seen_ms,
                    decided_ms, decided_by
             FROM suggestions WHERE ($1 IS NULL OR status = $1) ORDER BY seen_ms DESC, id DESC",
        )
        .bind(status.map(SuggestionStatus::as_str))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// The pending suggestion of `kind` for a route, if any.
    pub async fn pending_suggestion(
        &self,
        kind: SuggestionKind,
        route_id: &str,
    ) -> Result<Option<Suggestion>, StoreError> {
        let row = sqlx::query(
            "SELECT id, kind, route_id, provider, upstream_model, status, evidence, created_ms, seen_ms,
                    decided_ms, decided_by
             FROM suggestions WHERE kind = $1 AND route_id = $2 AND status = 'pending'",
        )
        .bind(kind.as_str())
        .bind(route_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }
}
