//! Z.ai (Zhipu): errors carry numeric business codes in `error.code`; 1301 is a content-safety
//! refusal and 1113 an exhausted balance, whatever the HTTP status says.

use super::{FailureKind, ProviderAdapter, UpstreamFailure};

pub struct Zai;

fn business_code(failure: &UpstreamFailure) -> Option<String> {
    let body: serde_json::Value = serde_json::from_slice(failure.body.as_deref()?).ok()?;
    match body.pointer("/error/code")? {
        serde_json::Value::String(code) => Some(code.clone()),
        serde_json::Value::Number(code) => Some(code.to_string()),
        _ => None,
    }
}

impl ProviderAdapter for Zai {
    fn name(&self) -> &'static str {
        "zai"
    }

    fn refine_failure(
        &self,
        mut failure: UpstreamFailure,
        _now: crate::time::EpochMs,
    ) -> UpstreamFailure {
        match business_code(&failure).as_deref() {
            Some("1301") => failure.kind = FailureKind::ContentPolicy,
            Some("1113") => failure.kind = FailureKind::PaymentRequired,
            _ => {}
        }
        failure
    }
}
