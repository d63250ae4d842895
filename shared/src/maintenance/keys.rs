//! Keys a provider refused (401/403) are tried again; one that works is restored at once. So is a
//! key resting on a route whose model its tier does not include (Gemini's `quotaValue: "0"`,
//! reason `not_in_tier`): a one-token probe that answers (the owner upgraded the project, the
//! tier changed) lifts the rest for every gateway.

use super::Maintenance;
use super::diagnosis::Probe;
use crate::providers::{SpentWindow, adapter_for, list_models};
use crate::time::now_ms;
use std::time::Duration;

impl Maintenance {
    /// Re-checks every refused key with a listing call; returns how many came back.
    pub async fn recheck_keys(&self) -> Result<usize, crate::store::StoreError> {
        let mut restored = 0;
        for (provider_name, key_id) in self.store.invalid_keys().await? {
            let Some(provider) = self.providers.get(&provider_name) else {
                continue;
            };
            let Some(key) = provider.keys.iter().find(|k| k.id == key_id) else {
                continue;
            };
            let Some(adapter) = adapter_for(&provider.adapter) else {
                continue;
            };
            let timeout = Duration::from_millis(self.settings.probe_timeout_ms);
            if list_models(adapter.as_ref(), &self.http, provider, Some(key), timeout)
                .await
                .is_ok()
                && self.store.restore_key(&provider_name, &key_id).await?
            {
                tracing::info!(provider = %provider_name, key = %key_id, "a refused key works again; restored");
                restored += 1;
            }
        }
        Ok(restored + self.recheck_tiers().await?)
    }

    /// Probes each route a key rests on as `not_in_tier`; lifts the rests that answer.
    pub async fn recheck_tiers(&self) -> Result<usize, crate::store::StoreError> {
        let now = now_ms();
        let mut lifted = 0;
        let resting = self.store.load_health(now).await?.keys;
        let reason = SpentWindow::NotInTier.reason();
        for rest in resting
            .iter()
            .filter(|k| k.reason == reason && k.until_ms > now)
        {
            let Some(provider) = self.providers.get(&rest.provider) else {
                continue;
            };
            let Some(key) = provider.keys.iter().find(|k| k.id == rest.key_id) else {
                continue;
            };
            let (Some(adapter), Some(route)) = (
                adapter_for(&provider.adapter),
                self.store.get_route(&rest.route_id).await?,
            ) else {
                continue;
            };
            if matches!(
                self.probe(adapter.as_ref(), provider, Some(key), &route, now)
                    .await,
                Probe::Answered
            ) && self
                .store
                .lift_key_cooldown(&rest.provider, &rest.key_id, &rest.route_id)
                .await?
            {
                tracing::info!(provider = %rest.provider, key = %rest.key_id, route = %rest.route_id,
                    "a model outside the key's tier answers now; the route is back for the key");
                lifted += 1;
            }
        }
        Ok(lifted)
    }
}
