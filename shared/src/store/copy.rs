//! Moving a store to another engine (`adminctl store copy --from ./data/freerouter.db --to
//! postgres://…`): the catalog, health, quota ledger and windows, suggestions, verdicts, stored
//! responses, the request log and the console's rollups, row for row, into an empty target in one
//! transaction. The running totals are rebuilt by the target's own triggers as the ledger lands.

use super::{Backend, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::{Column, Row};

/// The tables copied, in an order that satisfies every reference, with their columns.
const TABLES: &[(&str, &str)] = &[
    (
        "routes",
        "route_id, provider, upstream_model, display_name, rank, tags, context_window_tokens, \
         max_output_tokens, enabled, origin, limits, created_ms, updated_ms, aliases",
    ),
    (
        "route_health",
        "route_id, state, cooldown_until_ms, consecutive_failures, consecutive_timeouts, \
         consecutive_not_found, learned_context_window, last_error, last_error_ms, \
         last_success_ms, updated_ms",
    ),
    (
        "key_cooldowns",
        "provider, key_id, route_id, cooldown_until_ms, reason, strikes, updated_ms",
    ),
    (
        "invalid_keys",
        "provider, key_id, since_ms, last_status, retry_at_ms, strikes",
    ),
    (
        "quota_windows",
        "provider, key_id, scope, \"window\", window_start_ms, requests_used, tokens_used, \
         remaining_requests, remaining_tokens, reset_at_ms, updated_ms",
    ),
    (
        "quota_ledger",
        "id, provider, key_id, route_id, at_ms, tokens, settled, expires_ms, requests, \
         committed_requests, committed_tokens, holder, seq, granted_ms",
    ),
    (
        "suggestions",
        "id, kind, route_id, provider, upstream_model, status, evidence, created_ms, seen_ms, \
         decided_ms, decided_by",
    ),
    (
        "supervisor_verdicts",
        "provider, upstream_model, free_chat_model, confidence, reason, sources, asked_route, \
         created_ms, expires_ms",
    ),
    (
        "request_log",
        "id, request_id, at_ms, endpoint, requested_model, route_id, provider, attempts, status, \
         outcome, error_class, latency_ms, ttft_ms, tokens_in, tokens_out, stream, trail",
    ),
    (
        "stored_responses",
        "id, created_ms, expires_ms, response, conversation",
    ),
    // After the request log, whose insert triggers summed only what the log still holds: the
    // rollups keep more days than the log, so the source's own replace them.
    (
        "traffic_rollup",
        "bucket_ms, requests, served, fell_back, tokens_in, tokens_out",
    ),
    ("trouble_rollup", "bucket_ms, kind, reason, count"),
];

/// Tables whose `id` the target must continue after (PostgreSQL's identity sequences).
const IDENTITY_TABLES: &[&str] = &["quota_ledger", "suggestions", "request_log"];

/// Rows one insert statement carries.
const ROWS_PER_INSERT: usize = 200;

/// Why a copy did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the target already holds {routes} routes: copy into an empty database only")]
    TargetNotEmpty { routes: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CopyError {
    fn from(error: sqlx::Error) -> Self {
        CopyError::Store(StoreError::Sqlx(error))
    }
}

/// What was copied, table by table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    pub tables: Vec<(String, u64)>,
}

/// One value of a copied row: every column of the schema is an integer or a text.
enum Cell {
    Null,
    Int(i64),
    Text(String),
}

fn cell(row: &AnyRow, index: usize) -> Result<Cell, sqlx::Error> {
    if let Ok(value) = row.try_get::<Option<i64>, _>(index) {
        return Ok(value.map_or(Cell::Null, Cell::Int));
    }
    match row.try_get::<Option<String>, _>(index) {
        Ok(value) => Ok(value.map_or(Cell::Null, Cell::Text)),
        Err(_) => Err(sqlx::Error::ColumnDecode {
            index: row.columns()[index].name().to_string(),
            source: "neither an integer nor a text".into(),
        }),
    }
}

impl Store {
    /// Copies everything this store holds into `target`, which must hold no route yet (a new
    /// database: opening it created the schema), in one transaction of the target.
    pub async fn copy_into(&self, target: &Store) -> Result<Copied, CopyError> {
        let (routes,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM routes")
            .fetch_one(&target.pool)
            .await?;
        if routes > 0 {
            return Err(CopyError::TargetNotEmpty { routes });
        }
        let mut copied = Copied::default();
        let mut tx = target.writer.begin().await?;
        for (table, _) in TABLES.iter().rev() {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
        }
        for (table, columns) in TABLES {
            // Again, for the rollups the request log's triggers just filled.
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {columns} FROM {table}"
            )))
            .fetch_all(&self.pool)
            .await?;
            let width = columns.split(',').count();
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let mut sql = format!("INSERT INTO {table} ({columns}) VALUES ");
                for r in 0..chunk.len() {
                    let marks: Vec<String> = (1..=width)
                        .map(|c| target.placeholder(r * width + c))
                        .collect();
                    if r > 0 {
                        sql.push_str(", ");
                    }
                    sql.push('(');
                    sql.push_str(&marks.join(", "));
                    sql.push(')');
                }
                let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
                for row in chunk {
                    for index in 0..width {
                        insert = match cell(row, index)? {
                            Cell::Null => insert.bind(None::<i64>),
                            Cell::Int(value) => insert.bind(value),
                            Cell::Text(value) => insert.bind(value),
                        };
                    }
                }
                insert.execute(&mut *tx).await?;
            }
            copied.tables.push((table.to_string(), rows.len() as u64));
        }
        let (seeded,): (i64,) =
            sqlx::query_as("SELECT defaults_seeded FROM catalog_meta WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        // Bumped, so every process on the target reloads what it may have loaded before the copy.
        sqlx::query(
            "UPDATE catalog_meta SET defaults_seeded = $1, catalog_version = catalog_version + 1, \
             health_version = health_version + 1 WHERE id = 1",
        )
        .bind(seeded)
        .execute(&mut *tx)
        .await?;
        if target.backend == Backend::Postgres {
            for table in IDENTITY_TABLES {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                     COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                )))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(copied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Origin, Route, RouteSeed};
    use crate::health::{HealthChange, KeyCooldown};
    use crate::store::testing::on_both_backends;
    use crate::store::{LeaseAsk, RequestLogRow};
    use std::time::Duration;

    /// A SQLite file with a little of everything a gateway writes.
    async fn used_sqlite_store(dir: &tempfile::TempDir) -> Store {
        let source = Store::open(&dir.path().join("source.db"), Duration::from_secs(5))
            .await
            .unwrap();
        let route: Route = RouteSeed {
            provider: "p".into(),
            model: "m".into(),
            rank: Some(1),
            aliases: vec!["fast".into()],
            context_window: Some(32_000),
            tags: vec!["chat".into()],
            ..RouteSeed::default()
        }
        .into_route(Origin::Manual, true, 1);
        source.upsert_route(&route, 1_000).await.unwrap();
        source
            .apply_health_changes(
                &[HealthChange::Key(KeyCooldown {
                    provider: "p".into(),
                    key_id: "k".into(),
                    route_id: route.route_id.clone(),
                    until_ms: 9_000_000,
                    reason: "429".into(),
                    strikes: 1,
                })],
                1_000,
            )
            .await
            .unwrap();
        let lease = LeaseAsk {
            provider: "p".into(),
            key_id: "k".into(),
            route_id: route.route_id.clone(),
            holder: "h".into(),
            seq: 1,
            now: 2_000,
            expires_ms: 7_000,
            day_start: 0,
            requests: 4,
            tokens: 40,
            min_tokens: 1,
            committed_requests: 4,
            committed_tokens: 40,
            key_limits: Default::default(),
            route_limits: Default::default(),
        };
        source.grant_lease(lease).await.unwrap().unwrap();
        source
            .insert_request_logs(&[RequestLogRow {
                request_id: "req_1".into(),
                at_ms: 2_000,
                endpoint: "chat".into(),
                requested_model: "auto".into(),
                route_id: Some(route.route_id.clone()),
                provider: Some("p".into()),
                attempts: 2,
                status: 200,
                outcome: "ok".into(),
                error_class: None,
                latency_ms: 5,
                ttft_ms: None,
                tokens_in: Some(3),
                tokens_out: Some(4),
                stream: true,
                trail: "p/x:429,p/m:ok".into(),
            }])
            .await
            .unwrap();
        source
    }

    on_both_backends! {
        async fn a_sqlite_store_copied_into_an_empty_store_keeps_its_catalog_health_ledger_and_log(
            store: Store
        ) {
            let dir = tempfile::tempdir().unwrap();
            let source = used_sqlite_store(&dir).await;
            let copied = source.copy_into(&store).await.unwrap();
            assert!(copied.tables.contains(&("routes".to_string(), 1)));
            assert!(copied.tables.contains(&("quota_ledger".to_string(), 1)));

            assert_eq!(store.list_routes().await.unwrap(), source.list_routes().await.unwrap());
            let health = store.load_health(1_000).await.unwrap();
            assert_eq!(health.keys.len(), 1);
            assert_eq!(health.keys[0].until_ms, 9_000_000);
            // The running totals were rebuilt from the copied lease: a live block of 4.
            let usage = store.usage("p", "k", None, 3_000, 0, None).await.unwrap();
            assert_eq!((usage.minute_requests, usage.day_requests), (4, 4));
            let log = store.recent_request_logs(10).await.unwrap();
            assert_eq!(log, source.recent_request_logs(10).await.unwrap());
            let traffic = store.traffic_buckets(0, 300_000, 300_000).await.unwrap();
            assert_eq!((traffic[0].requests, traffic[0].fell_back), (1, 1));
            // New rows continue after the copied ids.
            store.insert_request_logs(&log).await.unwrap();
            assert_eq!(store.count_request_logs().await.unwrap(), 2);

            let again = source.copy_into(&store).await;
            assert!(matches!(again, Err(CopyError::TargetNotEmpty { routes: 1 })));
        }
    }
}
