//! How many output tokens one attempt on a route asks for, and is charged: the client's
//! `max_tokens` clamped to the route's maximum output (so a route is never asked for more than it
//! gives, and refuses nothing for it), and — for a provider that counts `max_tokens` against its
//! token window before answering (Cerebras) — that count kept, with the route's maximum standing
//! in when the client set none.

use crate::catalog::{Provider, Route, UNDECLARED_MAX_OUTPUT};

/// What a counting provider is reserved for when neither the client nor the route says how long
/// the answer may be.
const OUTPUT_ESTIMATE_UNDECLARED: u64 = 4096;

/// The `max_tokens` this route is sent: the client's, clamped to the route's maximum output where
/// the route declares one.
pub fn clamped_max_tokens(requested: Option<u64>, route: &Route) -> Option<u64> {
    requested.map(|asked| match route.max_output_tokens {
        UNDECLARED_MAX_OUTPUT => asked,
        most => asked.min(most),
    })
}

/// The output tokens an attempt reserves against the key's token windows.
pub fn reserved_output_tokens(requested: Option<u64>, route: &Route, provider: &Provider) -> u64 {
    match clamped_max_tokens(requested, route) {
        Some(tokens) => tokens,
        // The provider counts what the model may write; the route's maximum is that bound.
        None if provider.counts_max_tokens => match route.max_output_tokens {
            UNDECLARED_MAX_OUTPUT => OUTPUT_ESTIMATE_UNDECLARED,
            most => most,
        },
        None => 0,
    }
}

/// The tokens an answered attempt is charged: what the answer used, but never less than what a
/// provider that counts before answering has counted.
pub fn charged_tokens(provider: &Provider, used: Option<u64>, reserved: u64) -> u64 {
    match used {
        Some(used) if provider.counts_max_tokens => used.max(reserved),
        Some(used) => used,
        None => reserved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Origin, RouteSeed};

    fn route(max_output: u64) -> Route {
        seed(max_output).into_route(Origin::Manual, true, 1)
    }

    fn seed(max_output: u64) -> RouteSeed {
        RouteSeed {
            provider: "p".into(),
            model: "m".into(),
            display_name: None,
            rank: Some(1),
            score: None,
            aliases: Vec::new(),
            context_window: Some(65_536),
            max_output: Some(max_output),
            tags: Vec::new(),
            limits: None,
        }
    }

    fn provider(counts: bool) -> Provider {
        Provider {
            counts_max_tokens: counts,
            ..Provider::keyless("p", "http://127.0.0.1:9/v1")
        }
    }

    #[test]
    fn max_tokens_above_the_route_s_maximum_output_is_clamped_for_that_route() {
        assert_eq!(clamped_max_tokens(Some(32_000), &route(8_192)), Some(8_192));
        assert_eq!(clamped_max_tokens(Some(1_000), &route(8_192)), Some(1_000));
        assert_eq!(clamped_max_tokens(None, &route(8_192)), None);
    }

    #[test]
    fn a_route_that_declares_no_maximum_output_sends_max_tokens_as_asked() {
        let undeclared = RouteSeed {
            max_output: None,
            ..seed(0)
        }
        .into_route(Origin::Manual, true, 1);
        assert_eq!(clamped_max_tokens(Some(32_000), &undeclared), Some(32_000));
        assert_eq!(
            reserved_output_tokens(None, &undeclared, &provider(true)),
            OUTPUT_ESTIMATE_UNDECLARED
        );
    }

    #[test]
    fn a_provider_counting_max_tokens_up_front_is_reserved_and_charged_for_it() {
        let (counting, plain) = (provider(true), provider(false));
        let r = route(8_192);
        assert_eq!(reserved_output_tokens(Some(32_000), &r, &counting), 8_192);
        assert_eq!(
            reserved_output_tokens(None, &r, &counting),
            8_192,
            "without max_tokens it counts the most the model may write"
        );
        assert_eq!(reserved_output_tokens(None, &r, &plain), 0);
        assert_eq!(charged_tokens(&counting, Some(120), 8_300), 8_300);
        assert_eq!(charged_tokens(&plain, Some(120), 8_300), 120);
        assert_eq!(charged_tokens(&plain, None, 8_300), 8_300);
    }
}
