//! Stored responses: whether a response is kept (only when the owner sets a retention; then, as
//! at OpenAI, unless the request says `store: false`), and the conversation a follow-up naming it
//! in `previous_response_id` continues: the stored turns, then the new one (the new request's
//! `instructions` replace the old ones, as at OpenAI).

use super::input::ChatMessage;
use crate::store::StoredResponse;
use crate::time::EpochMs;
use serde_json::value::RawValue;

/// Why the request cannot be served as asked: the field that needs storing, which is off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoringOff {
    pub field: &'static str,
}

/// Whether this response is to be stored, given `storage.responses_retention_hours`.
pub fn decide(
    retention_hours: u64,
    store: Option<bool>,
    previous_response_id: Option<&str>,
) -> Result<bool, StoringOff> {
    if retention_hours > 0 {
        return Ok(store.unwrap_or(true));
    }
    match (previous_response_id, store) {
        (Some(_), _) => Err(StoringOff {
            field: "previous_response_id",
        }),
        (None, Some(true)) => Err(StoringOff { field: "store" }),
        _ => Ok(false),
    }
}

/// When a response stored at `now` expires.
pub fn expires_ms(now: EpochMs, retention_hours: u64) -> EpochMs {
    let hours = i64::try_from(retention_hours).unwrap_or(i64::MAX);
    now.saturating_add(hours.saturating_mul(3_600_000))
}

/// The conversation a stored response holds; `None` when what was stored cannot be read.
pub fn history(stored: &StoredResponse) -> Option<Vec<ChatMessage>> {
    serde_json::from_str(&stored.conversation).ok()
}

/// What to store of a response: its object, and the conversation with its turn and reply.
pub fn record(
    history: &[ChatMessage],
    turn: &[ChatMessage],
    reply: &[ChatMessage],
    response: &RawValue,
) -> StoredResponse {
    let conversation: Vec<&ChatMessage> = history.iter().chain(turn).chain(reply).collect();
    StoredResponse {
        response: response.get().to_string(),
        conversation: serde_json::to_string(&conversation).unwrap_or_else(|_| "[]".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storing_follows_openai_when_on_and_refuses_what_needs_it_when_off() {
        assert_eq!(decide(24, None, None), Ok(true));
        assert_eq!(decide(24, Some(false), Some("resp_1")), Ok(false));
        assert_eq!(decide(0, None, None), Ok(false));
        assert_eq!(decide(0, Some(false), None), Ok(false));
        assert_eq!(
            decide(0, Some(true), None),
            Err(StoringOff { field: "store" })
        );
        assert_eq!(
            decide(0, Some(false), Some("resp_1")),
            Err(StoringOff {
                field: "previous_response_id"
            })
        );
        assert_eq!(expires_ms(1_000, 2), 1_000 + 7_200_000);
        assert_eq!(expires_ms(1, u64::MAX), i64::MAX);
    }

    #[test]
    fn a_record_holds_the_whole_conversation_and_reads_back() {
        let history = [
            ChatMessage::text("user", "hi"),
            ChatMessage::text("assistant", "hello"),
        ];
        let turn = [ChatMessage::text("user", "more")];
        let reply = [ChatMessage::text("assistant", "sure")];
        let response = RawValue::from_string("{\"id\":\"resp_1\"}".into()).unwrap();
        let stored = record(&history, &turn, &reply, &response);
        assert_eq!(stored.response, "{\"id\":\"resp_1\"}");
        let back = super::history(&stored).unwrap();
        assert_eq!(back.len(), 4);
        assert_eq!(back[3], ChatMessage::text("assistant", "sure"));
    }
}
