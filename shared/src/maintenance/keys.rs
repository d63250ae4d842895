//! Keys a provider refused (401/403) are tried again; one that works is restored at once.

use super::Maintenance;
use crate::providers::{adapter_for, list_models};
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
        Ok(restored)
    }
}
