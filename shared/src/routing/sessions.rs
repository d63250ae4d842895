//! Sticky sessions: a multi-turn conversation keeps the route that served it for a while.
//!
//! The session is named by `X-Session-Id`, or — only when the request already holds an assistant
//! turn — by the messages before that first assistant turn. Single-turn requests are never pinned.

use crate::time::EpochMs;
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
    /// The session a request belongs to, if any: its explicit id, else its opening (see [`opening`]).
    pub fn of(explicit: Option<&str>, opening: Option<u64>) -> Option<SessionKey> {
        if let Some(id) = explicit.filter(|id| !id.is_empty()) {
            let mut hasher = DefaultHasher::new();
            ("explicit", id).hash(&mut hasher);
            return Some(SessionKey(hasher.finish()));
        }
        opening.map(SessionKey)
    }
}

/// The name of a conversation's opening: a hash of the messages before its first assistant turn,
/// as the client wrote them (`(role, raw JSON text)` in order). `None` for a single turn.
pub fn opening<'a>(messages: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    "opening".hash(&mut hasher);
    for (at, (role, raw)) in messages.into_iter().enumerate() {
        if role == "assistant" {
            return (at > 0).then(|| hasher.finish());
        }
        raw.hash(&mut hasher);
    }
    None
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
    use serde_json::{Value, json};

    fn key(messages: &[Value]) -> Option<SessionKey> {
        let texts: Vec<(String, String)> = messages
            .iter()
            .map(|m| (m["role"].as_str().unwrap().to_string(), m.to_string()))
            .collect();
        SessionKey::of(
            None,
            opening(texts.iter().map(|(r, t)| (r.as_str(), t.as_str()))),
        )
    }

    #[test]
    fn single_turn_requests_have_no_session_and_multi_turn_ones_share_their_opening() {
        let turn1 = vec![
            json!({"role":"system","content":"s"}),
            json!({"role":"user","content":"hi"}),
        ];
        assert_eq!(key(&turn1), None);
        let mut turn2 = turn1.clone();
        turn2.push(json!({"role":"assistant","content":"hello"}));
        turn2.push(json!({"role":"user","content":"more"}));
        let mut turn3 = turn2.clone();
        turn3.push(json!({"role":"assistant","content":"sure"}));
        turn3.push(json!({"role":"user","content":"again"}));
        assert!(key(&turn2).is_some());
        assert_eq!(key(&turn2), key(&turn3));
        assert!(SessionKey::of(Some("abc"), None).is_some());
        let starts_with_assistant = vec![json!({"role":"assistant","content":"x"})];
        assert_eq!(key(&starts_with_assistant), None);
    }

    #[test]
    fn a_pin_lasts_its_ttl() {
        let sessions = StickySessions::default();
        let key = SessionKey::of(Some("s1"), None).unwrap();
        sessions.pin(key, "p/m", 0);
        assert_eq!(
            sessions.pinned(key, SESSION_TTL_MS - 1).as_deref(),
            Some("p/m")
        );
        assert_eq!(sessions.pinned(key, SESSION_TTL_MS), None);
    }
}
