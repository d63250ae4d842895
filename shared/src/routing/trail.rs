//! The attempt trail of one request: which routes were tried and what each answered.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    pub route: String,
    /// `ok`, or a failure label (`429`, `5xx`, `header_timeout`, …).
    pub result: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Trail(Vec<AttemptRecord>);

impl Trail {
    pub fn push(&mut self, route: &str, result: &str) {
        self.0.push(AttemptRecord {
            route: route.to_string(),
            result: result.to_string(),
        });
    }

    pub fn attempts(&self) -> usize {
        self.0.len()
    }

    pub fn records(&self) -> &[AttemptRecord] {
        &self.0
    }

    /// `groq/llama-3.3-70b:429,cerebras/qwen-3:ok` — the `X-Gateway-Trail` header.
    pub fn header_value(&self) -> String {
        let mut out = String::new();
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&a.route);
            out.push(':');
            out.push_str(&a.result);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trail_reads_as_route_colon_result_pairs() {
        let mut trail = Trail::default();
        trail.push("groq/llama", "429");
        trail.push("cerebras/qwen", "ok");
        assert_eq!(trail.header_value(), "groq/llama:429,cerebras/qwen:ok");
        assert_eq!(trail.attempts(), 2);
    }
}
