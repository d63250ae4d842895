//! How much a request may spend of scarce daily quota: `X-FreeRouter-Priority: low` (or the
//! default of a low-priority client key) keeps it off a key's route once that route's daily
//! window is down to `routing.low_priority_reserve` of its limit, so batch jobs leave the strong
//! models' last requests of the day to the person who needs them later. `normal` and `high`
//! use everything.

/// A request's priority.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
}

/// The header value is not one of `low`, `normal`, `high`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("X-FreeRouter-Priority must be low, normal or high, got {0:?}")]
pub struct InvalidPriority(pub String);

impl Priority {
    pub const HEADER: &'static str = "x-freerouter-priority";

    pub fn parse(value: &str) -> Result<Self, InvalidPriority> {
        match value.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Priority::Low),
            "normal" | "" => Ok(Priority::Normal),
            "high" => Ok(Priority::High),
            _ => Err(InvalidPriority(value.chars().take(40).collect())),
        }
    }
}

/// Whether a route whose daily window has `share_left` (0.0–1.0) of its limit left is kept
/// from a request of `priority`.
pub fn held_back(priority: Priority, share_left: Option<f64>, reserve: f64) -> bool {
    priority == Priority::Low && share_left.is_some_and(|left| left < reserve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_reads_three_words_in_any_case_and_refuses_others() {
        assert_eq!(Priority::parse("LOW"), Ok(Priority::Low));
        assert_eq!(Priority::parse(" high "), Ok(Priority::High));
        assert_eq!(Priority::parse("normal"), Ok(Priority::Normal));
        assert!(Priority::parse("urgent").is_err());
    }

    #[test]
    fn only_low_priority_is_held_back_and_only_below_the_reserve() {
        assert!(held_back(Priority::Low, Some(0.19), 0.2));
        assert!(!held_back(Priority::Low, Some(0.2), 0.2));
        assert!(
            !held_back(Priority::Low, None, 0.2),
            "no daily limit, nothing to keep"
        );
        assert!(!held_back(Priority::Normal, Some(0.01), 0.2));
        assert!(!held_back(Priority::High, Some(0.0), 0.2));
    }
}
