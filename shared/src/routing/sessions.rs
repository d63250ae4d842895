//! Sticky sessions: a multi-turn conversation keeps the route that served it for a while.
//!
//! The session is named by `X-Session-Id`, or — only when the request already holds an assistant
//! turn — by the messages before that first assistant turn. Single-turn requests are never pinned.

use crate::time::EpochMs;
use serde_json::Value;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

/// How long a conversation keeps its route after its last turn.
pub const SESSION_TTL_MS: EpochMs = 30 * 60_000;
/// Sessions remembered at most (oldest forgotten first).
const MAX_SESSIONS: usize = 10_000;

/// A session's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey(u64);

impl SessionKey {
    /// The session a request belongs to, if any.
    pub fn of(explicit: Option<&str>, messages: &[Value]) -> Option<SessionKey> {
        let mut hasher = DefaultHasher::new();
        if let Some(id) = explicit.filter(|id| !id.is_empty()) {
            ("explicit", id).hash(&mut hasher);
            return Some(SessionKey(hasher.finish()));
        }
        let first_assistant = messages
            .iter()
            .position(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))?;
        if first_assistant == 0 {
            return None;
        }
        "opening".hash(&mut hasher);
        for message in &messages[..first_assistant] {
            message.to_string().hash(&mut hasher);
        }
        Some(SessionKey(hasher.finish()))
    }
}

#[derive(Default)]
pub struct StickySessions {
    pins: Mutex<HashMap<SessionKey, (String, EpochMs)>>,
}

impl StickySessions {
    /// The route this session is pinned to, if the pin is still fresh.
    pub fn pinned(&self, key: SessionKey, now: EpochMs) -> Option<String> {
        let pins = self.pins.lock().unwrap_or_else(|e| e.into_inner());
        pins.get(&key)
            .filter(|(_, until)| *until > now)
            .map(|(route, _)| route.clone())
    }

    /// Pins the session to the route that just served it.
    pub fn pin(&self, key: SessionKey, route_id: &str, now: EpochMs) {
        let mut pins = self.pins.lock().unwrap_or_else(|e| e.into_inner());
        if pins.len() >= MAX_SESSIONS && !pins.contains_key(&key) {
            pins.retain(|_, (_, until)| *until > now);
            if pins.len() >= MAX_SESSIONS
                && let Some(oldest) = pins
                    .iter()
                    .min_by_key(|(_, (_, until))| *until)
                    .map(|(k, _)| *k)
            {
                pins.remove(&oldest);
            }
        }
        pins.insert(key, (route_id.to_string(), now + SESSION_TTL_MS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn single_turn_requests_have_no_session_and_multi_turn_ones_share_their_opening() {
        let turn1 = vec![
            json!({"role":"system","content":"s"}),
            json!({"role":"user","content":"hi"}),
        ];
        assert_eq!(SessionKey::of(None, &turn1), None);
        let mut turn2 = turn1.clone();
        turn2.push(json!({"role":"assistant","content":"hello"}));
        turn2.push(json!({"role":"user","content":"more"}));
        let mut turn3 = turn2.clone();
        turn3.push(json!({"role":"assistant","content":"sure"}));
        turn3.push(json!({"role":"user","content":"again"}));
        assert!(SessionKey::of(None, &turn2).is_some());
        assert_eq!(SessionKey::of(None, &turn2), SessionKey::of(None, &turn3));
        assert!(SessionKey::of(Some("abc"), &turn1).is_some());
    }

    #[test]
    fn a_pin_lasts_its_ttl() {
        let sessions = StickySessions::default();
        let key = SessionKey::of(Some("s1"), &[]).unwrap();
        sessions.pin(key, "p/m", 0);
        assert_eq!(
            sessions.pinned(key, SESSION_TTL_MS - 1).as_deref(),
            Some("p/m")
        );
        assert_eq!(sessions.pinned(key, SESSION_TTL_MS), None);
    }
}
