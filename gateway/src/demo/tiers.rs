//! The simulated free tiers: what each is like (rank, speed, limits, how it fails) and the answer
//! it writes. Deterministic — the same question gets the same answer from a tier (so a cut stream
//! restarted on another try continues exactly), and the flaky tier fails on a fixed rhythm.

use freerouter::config::{Limits, RouteSettings};

/// One simulated tier.
pub struct Tier {
    /// The upstream model id; the route is `demo/<model>`.
    pub model: &'static str,
    pub rank: i64,
    /// What it stands for, in its answers and the start log.
    pub blurb: &'static str,
    /// Before the first byte (headers of a whole answer, first chunk of a stream).
    pub first_token_ms: u64,
    /// Between streamed words.
    pub word_ms: u64,
    pub rpm: Option<u64>,
    pub rpd: Option<u64>,
    pub context_window: u64,
    /// Calls whose number (from 0) modulo `.0` is at least `.1` answer 503: `(5, 3)` fails the
    /// 4th and 5th of every five, so the gateway's one quick retry fails too and it falls back.
    pub fails: Option<(u64, u64)>,
}

/// The tiers, strongest first.
pub const TIERS: &[Tier] = &[
    Tier {
        model: "sage-70b",
        rank: 1,
        blurb: "the strongest demo tier: slow, with a tiny daily quota (5 requests a day)",
        first_token_ms: 600,
        word_ms: 40,
        rpm: Some(3),
        rpd: Some(5),
        context_window: 32_768,
        fails: None,
    },
    Tier {
        model: "flaky-32b",
        rank: 2,
        blurb: "a good tier that fails now and then (two 503s in every five calls)",
        first_token_ms: 250,
        word_ms: 20,
        rpm: Some(10),
        rpd: None,
        context_window: 32_768,
        fails: Some((5, 3)),
    },
    Tier {
        model: "swift-8b",
        rank: 3,
        blurb: "a small, fast tier (12 requests a minute)",
        first_token_ms: 60,
        word_ms: 5,
        rpm: Some(12),
        rpd: None,
        context_window: 8_192,
        fails: None,
    },
    Tier {
        model: "pocket-3b",
        rank: 4,
        blurb: "the last resort: a tiny model (6 requests a minute, 200 a day)",
        first_token_ms: 150,
        word_ms: 10,
        rpm: Some(6),
        rpd: Some(200),
        context_window: 4_096,
        fails: None,
    },
];

/// The tier serving `model`.
pub fn tier(model: &str) -> Option<&'static Tier> {
    TIERS.iter().find(|t| t.model == model)
}

/// The routes of demo mode, with the limits the gateway's quota ledger keeps.
pub fn routes() -> Vec<RouteSettings> {
    TIERS
        .iter()
        .map(|t| RouteSettings {
            provider: super::PROVIDER.to_string(),
            model: t.model.to_string(),
            display_name: Some(format!("Demo {}", t.model)),
            rank: Some(t.rank),
            context_window: Some(t.context_window),
            max_output: Some(1024),
            tags: Vec::new(),
            aliases: Vec::new(),
            limits: Some(Limits {
                rpm: t.rpm,
                rpd: t.rpd,
                ..Limits::default()
            }),
            enabled: Some(true),
        })
        .collect()
}

/// The route ids, for the start log.
pub fn route_ids() -> Vec<String> {
    TIERS
        .iter()
        .map(|t| format!("{}/{}", super::PROVIDER, t.model))
        .collect()
}

impl Tier {
    /// Whether call number `n` (from 0) fails.
    pub fn fails_on(&self, n: u64) -> bool {
        self.fails.is_some_and(|(every, from)| n % every >= from)
    }

    /// The answer to `question`: says what answered and that it is simulated.
    pub fn answer(&self, question: &str) -> String {
        let question: String = question.split_whitespace().collect::<Vec<_>>().join(" ");
        let question = match question.char_indices().nth(80) {
            Some((at, _)) => format!("{}…", &question[..at]),
            None => question,
        };
        format!(
            "Hello from demo/{model}, {blurb}. You asked: \"{question}\". This answer is simulated: \
             FreeRouter's demo mode has no real model behind it. Send a few more requests and watch \
             the console: the strongest tier runs out of quota, the flaky one fails over, and when \
             every tier is spent you get 429 quota_exhausted with a Retry-After. Start without --demo, \
             with a key such as GROQ_API_KEY, to route to real free tiers.",
            model = self.model,
            blurb = self.blurb,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flaky_tier_fails_twice_in_every_five_calls() {
        let flaky = tier("flaky-32b").unwrap();
        let fails: Vec<bool> = (0..10).map(|n| flaky.fails_on(n)).collect();
        assert_eq!(
            fails,
            [
                false, false, false, true, true, false, false, false, true, true
            ]
        );
        assert!(!(0..10).any(|n| tier("swift-8b").unwrap().fails_on(n)));
    }

    #[test]
    fn an_answer_names_its_tier_and_keeps_long_questions_short() {
        let answer = tier("swift-8b").unwrap().answer(&"why ".repeat(100));
        assert!(answer.starts_with("Hello from demo/swift-8b"));
        assert!(answer.contains("why why"));
        assert!(answer.len() < 1000);
    }
}
