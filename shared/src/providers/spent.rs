//! Which quota a refusal says is spent, read from a provider's own form (a structured detail, or
//! the wording its adapter knows), so a key rests a minute, a day, a month or, for a model the
//! key's tier does not include, until someone looks.

/// The window a refusal names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpentWindow {
    /// A per-minute rate: the key is back within the minute (or the hint given).
    Minute,
    /// A daily quota: back when the provider's day turns.
    Day,
    /// A monthly quota: back when the calendar month turns (UTC).
    Month,
    /// The model is not in this key's tier at all (Gemini's `quotaValue: "0"`): waiting does not
    /// help; the route stays off for this key until a health reset or a probe sees it work.
    NotInTier,
}

impl SpentWindow {
    /// The reason a key cooldown carries (shown by `/status` and adminctl).
    pub fn reason(self) -> &'static str {
        match self {
            SpentWindow::Minute => "minute_rate",
            SpentWindow::Day => "daily_quota",
            SpentWindow::Month => "monthly_quota",
            SpentWindow::NotInTier => "not_in_tier",
        }
    }
}

/// What a refusal says is spent, and for what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spent {
    pub window: SpentWindow,
    /// The quota is the key's (or account's) across all its models (OpenRouter's free pool,
    /// Cohere's monthly calls), not this model's alone.
    pub whole_key: bool,
}

impl Spent {
    pub fn route(window: SpentWindow) -> Self {
        Self {
            window,
            whole_key: false,
        }
    }

    pub fn key(window: SpentWindow) -> Self {
        Self {
            window,
            whole_key: true,
        }
    }
}

/// OpenAI's wording, which Groq and most vLLM-served providers share: "Rate limit reached for
/// requests per day (RPD): …", "… tokens per minute (TPM) …". Only read on a 429, whose message
/// does not echo the client's text.
pub fn openai_wording(message: &str) -> Option<Spent> {
    let lower = message.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    // GitHub Models: "Rate limit of 50 per 86400s exceeded for UserByModelByDay".
    if has(&[
        "per day",
        "(rpd)",
        "(tpd)",
        "daily",
        "quota exceeded for today",
        "byday",
    ]) {
        Some(Spent::route(SpentWindow::Day))
    } else if has(&["per month", "monthly"]) {
        Some(Spent::route(SpentWindow::Month))
    } else if has(&["per minute", "(rpm)", "(tpm)", "byminute"]) {
        Some(Spent::route(SpentWindow::Minute))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_s_wording_names_the_window() {
        let day = "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_1` service tier `on_demand` on requests per day (RPD): Limit 1000, Used 1000, Requested 1. Please try again in 1m26.4s.";
        assert_eq!(openai_wording(day), Some(Spent::route(SpentWindow::Day)));
        let tokens_day = "Rate limit reached for model `x` on tokens per day (TPD): Limit 100000, Used 99990, Requested 300.";
        assert_eq!(
            openai_wording(tokens_day),
            Some(Spent::route(SpentWindow::Day))
        );
        let minute = "Rate limit reached for model `x` on tokens per minute (TPM): Limit 6000, Used 5900, Requested 400.";
        assert_eq!(
            openai_wording(minute),
            Some(Spent::route(SpentWindow::Minute))
        );
        assert_eq!(openai_wording("Too many requests"), None);
    }

    #[test]
    fn cerebras_wording_names_the_window() {
        for (message, window) in [
            (
                "Tokens per day limit exceeded - too many tokens processed.",
                SpentWindow::Day,
            ),
            (
                "Requests per day limit exceeded - too many requests sent.",
                SpentWindow::Day,
            ),
            (
                "Tokens per minute limit exceeded - too many tokens processed.",
                SpentWindow::Minute,
            ),
        ] {
            assert_eq!(
                openai_wording(message),
                Some(Spent::route(window)),
                "{message}"
            );
        }
    }

    #[test]
    fn github_models_wording_names_the_day() {
        let message = "Rate limit of 50 per 86400s exceeded for UserByModelByDay. Please wait 57476 seconds before retrying.";
        assert_eq!(
            openai_wording(message),
            Some(Spent::route(SpentWindow::Day))
        );
    }
}
