//! Provider status: keys (by fingerprint only), whether usable, routes, and each key's standing.

use crate::catalog::Provider;
use crate::quota::Ledger;
use crate::quota::window::{Usage, day_window_start};
use crate::store::{Store, StoreError};
use crate::time::EpochMs;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize)]
pub struct KeyStatus {
    /// A fingerprint, never the key.
    pub key_id: String,
    pub invalid: bool,
    /// The key's use across the provider, sliding minute and the provider's day, as far as the
    /// process asking knows it: its own leases at what they handed out, other processes' live
    /// leases whole (they may yet spend them).
    pub usage: Usage,
    /// What the asking process's leases hold unspent: counted against the key's limits until
    /// settled or given back (at shutdown, or when they expire), never sent.
    pub held: Usage,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProviderStatus {
    pub name: String,
    pub usable: bool,
    /// With any credentials it holds (user info, query values) replaced by `***`.
    pub base_url: String,
    pub key_variables: Vec<String>,
    pub missing: Vec<String>,
    pub routes: usize,
    pub enabled_routes: usize,
    pub limits: crate::config::Limits,
    /// Its terms let it train on prompts (`catalog::data_use`), and where that was read.
    pub trains_on_prompts: bool,
    pub trains_on_prompts_source: Option<String>,
    /// It counts `max_tokens` against its token window before answering.
    pub counts_max_tokens: bool,
    /// Its free use is a trial credit that runs out.
    pub trial: bool,
    /// When its day windows turn next.
    pub day_turns_ms: EpochMs,
    pub keys: Vec<KeyStatus>,
}

/// Every provider's status; `ledger` is the asking process's own (a gateway's), whose unspent
/// leases are told apart from use, or `None` for a process that holds none (adminctl).
pub async fn status(
    store: &Store,
    providers: &BTreeMap<String, Provider>,
    ledger: Option<&Ledger>,
    now: EpochMs,
) -> Result<Vec<ProviderStatus>, StoreError> {
    let routes = store.list_routes().await?;
    let invalid = store.invalid_keys().await?;
    let mut out = Vec::new();
    for provider in providers.values() {
        let day_start = day_window_start(now, provider.day_reset_minute);
        let mut keys = Vec::new();
        for key in &provider.keys {
            let counted = store
                .usage(
                    &provider.name,
                    &key.id,
                    None,
                    now,
                    day_start,
                    provider.limits.window_hours,
                )
                .await?;
            let held =
                ledger.map_or_else(Usage::default, |l| l.unspent(&provider.name, &key.id, now));
            keys.push(KeyStatus {
                key_id: key.id.clone(),
                invalid: invalid
                    .iter()
                    .any(|(p, k)| *p == provider.name && *k == key.id),
                usage: counted.less(&held),
                held,
            });
        }
        let ours: Vec<_> = routes
            .iter()
            .filter(|r| r.provider == provider.name)
            .collect();
        out.push(ProviderStatus {
            name: provider.name.clone(),
            usable: provider.usable(),
            base_url: crate::config::redact_url(&provider.base_url),
            key_variables: provider.key_env.clone(),
            missing: if provider.usable() {
                Vec::new()
            } else {
                provider
                    .key_env
                    .iter()
                    .take(1)
                    .cloned()
                    .chain(provider.missing_params.iter().cloned())
                    .collect()
            },
            routes: ours.len(),
            enabled_routes: ours.iter().filter(|r| r.enabled).count(),
            limits: provider.limits,
            trains_on_prompts: provider.trains_on_prompts,
            trains_on_prompts_source: provider.trains_on_prompts_source.clone(),
            counts_max_tokens: provider.counts_max_tokens,
            trial: provider.trial,
            day_turns_ms: day_start + crate::quota::window::DAY_MS,
            keys,
        });
    }
    Ok(out)
}
