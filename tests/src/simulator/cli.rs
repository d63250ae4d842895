//! Command line of the `freerouter-simulator` binary, parsed by hand.

use std::net::SocketAddr;

use super::{KeyLimits, Simulator};

pub const USAGE: &str = "\
usage: freerouter-simulator [--listen ADDR] [--model ID]... [--answer TEXT] [--latency-ms N]
                            [--first-token-delay-ms N] [--chunk-delay-ms N]
                            [--key-limits KEY=LIMITS]... [--day-reset-minute N]

  --listen ADDR              address to bind (default 127.0.0.1:0)
  --model ID                 a model to serve; repeat for more (default: sim-model)
  --answer TEXT              what every model answers (default: a sentence naming the model)
  --latency-ms N             delay before response headers
  --first-token-delay-ms N   streaming: delay before the first content chunk
  --chunk-delay-ms N         streaming: delay between content chunks
  --key-limits KEY=LIMITS    rate limits for requests with `Authorization: Bearer KEY`, across all
                             models; LIMITS is a comma-separated list of rpm:N, rpd:N, tpm:N, tpd:N
                             (e.g. sk-a=rpm:30,rpd:1000,tpm:6000; an empty KEY is requests without
                             a key); repeat for more keys; other keys are unlimited
  --day-reset-minute N       minutes after UTC midnight when the day limits reset (default 0)

Any path ending in /chat/completions or /embeddings (POST) or /models (GET) is served.";

/// What the binary was asked to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Help,
    Run(Options),
}

/// Settings of a standalone simulator.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub listen: SocketAddr,
    pub models: Vec<String>,
    /// `--answer`: the text every model answers with, else each model's own default.
    pub answer: Option<String>,
    pub latency_ms: u64,
    pub first_token_delay_ms: u64,
    pub chunk_delay_ms: u64,
    /// `--key-limits`, in the order given (a later one for the same key wins).
    pub key_limits: Vec<(String, KeyLimits)>,
    pub day_reset_minute: u32,
}

impl Command {
    /// Parses the arguments after the program name; `Err` says what is wrong.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
        let mut options = Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            models: Vec::new(),
            answer: None,
            latency_ms: 0,
            first_token_delay_ms: 0,
            chunk_delay_ms: 0,
            key_limits: Vec::new(),
            day_reset_minute: 0,
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Ok(Command::Help);
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--listen" => {
                    options.listen = value
                        .parse()
                        .map_err(|e| format!("--listen {value}: {e}"))?;
                }
                "--model" => options.models.push(value),
                "--answer" => options.answer = Some(value),
                "--latency-ms" => options.latency_ms = millis(&flag, &value)?,
                "--first-token-delay-ms" => options.first_token_delay_ms = millis(&flag, &value)?,
                "--chunk-delay-ms" => options.chunk_delay_ms = millis(&flag, &value)?,
                "--key-limits" => {
                    let limits = key_limits(&value).map_err(|e| format!("{flag} {value}: {e}"))?;
                    options.key_limits.push(limits);
                }
                "--day-reset-minute" => {
                    options.day_reset_minute = value
                        .parse()
                        .ok()
                        .filter(|m| *m < 1_440)
                        .ok_or_else(|| format!("{flag} {value}: expected 0 to 1439"))?;
                }
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        if options.models.is_empty() {
            options.models.push("sim-model".to_string());
        }
        Ok(Command::Run(options))
    }
}

fn millis(flag: &str, value: &str) -> Result<u64, String> {
    value.parse().map_err(|e| format!("{flag} {value}: {e}"))
}

/// `KEY=rpm:30,rpd:1000,tpm:6000`: the key (before the last `=`) and its limits.
fn key_limits(value: &str) -> Result<(String, KeyLimits), String> {
    let (key, list) = value
        .rsplit_once('=')
        .ok_or("expected KEY=rpm:N,rpd:N,tpm:N,tpd:N")?;
    let mut limits = KeyLimits::default();
    for item in list.split(',') {
        let (name, n) = item
            .split_once(':')
            .ok_or_else(|| format!("`{item}` is not NAME:N"))?;
        let n: u64 = n.trim().parse().map_err(|e| format!("`{item}`: {e}"))?;
        let slot = match name.trim() {
            "rpm" => &mut limits.rpm,
            "rpd" => &mut limits.rpd,
            "tpm" => &mut limits.tpm,
            "tpd" => &mut limits.tpd,
            other => return Err(format!("unknown limit `{other}` (rpm, rpd, tpm or tpd)")),
        };
        *slot = Some(n);
    }
    Ok((key.to_string(), limits))
}

impl Options {
    /// Creates the models with the timings and sets the key limits. Request recording is turned off
    /// so a long run keeps its memory flat.
    pub fn apply(&self, sim: &Simulator) {
        sim.set_recording(false);
        sim.day_reset_minute(self.day_reset_minute);
        for (key, limits) in &self.key_limits {
            sim.limit_key(key, *limits);
        }
        for id in &self.models {
            let model = sim.model(id);
            model
                .latency_ms(self.latency_ms)
                .first_token_delay_ms(self.first_token_delay_ms)
                .chunk_delay_ms(self.chunk_delay_ms);
            if let Some(answer) = &self.answer {
                model.answer(answer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        Command::parse(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn repeated_models_and_timings_are_read() {
        let Ok(Command::Run(options)) = parse(&[
            "--listen",
            "127.0.0.1:9000",
            "--model",
            "sim-a",
            "--model",
            "sim-b",
            "--latency-ms",
            "25",
        ]) else {
            panic!("valid arguments");
        };
        assert_eq!(options.listen, SocketAddr::from(([127, 0, 0, 1], 9000)));
        assert_eq!(options.models, vec!["sim-a", "sim-b"]);
        assert_eq!(options.latency_ms, 25);
        assert_eq!(options.answer, None);
    }

    #[tokio::test]
    async fn an_answer_text_is_read_whole_and_given_by_every_model() {
        let Ok(Command::Run(options)) = parse(&[
            "--model",
            "sim-a",
            "--answer",
            "The quick brown fox.",
            "--model",
            "sim-b",
        ]) else {
            panic!("valid arguments");
        };
        assert_eq!(options.answer.as_deref(), Some("The quick brown fox."));
        assert!(parse(&["--answer"]).is_err());

        let sim = Simulator::start().await;
        options.apply(&sim);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        for model in ["sim-a", "sim-b"] {
            let answer: serde_json::Value = http
                .post(format!("{}/chat/completions", sim.base_url()))
                .json(&serde_json::json!({
                    "model": model,
                    "messages": [{"role": "user", "content": "Hi"}],
                }))
                .send()
                .await
                .expect("the simulator answers")
                .json()
                .await
                .expect("a JSON answer");
            assert_eq!(
                answer.pointer("/choices/0/message/content"),
                Some(&serde_json::json!("The quick brown fox.")),
                "{model}"
            );
        }
    }

    #[test]
    fn no_model_means_one_default_model() {
        let Ok(Command::Run(options)) = parse(&[]) else {
            panic!("no arguments is valid");
        };
        assert_eq!(options.models, vec!["sim-model"]);
        assert_eq!(options.listen.port(), 0);
    }

    #[test]
    fn key_limits_are_read_per_key() {
        let Ok(Command::Run(options)) = parse(&[
            "--key-limits",
            "sk-a=rpm:30,rpd:1000,tpm:6000",
            "--key-limits",
            "=tpd:5",
            "--day-reset-minute",
            "420",
        ]) else {
            panic!("valid arguments");
        };
        let expected = vec![
            (
                "sk-a".to_string(),
                KeyLimits {
                    rpm: Some(30),
                    rpd: Some(1_000),
                    tpm: Some(6_000),
                    tpd: None,
                },
            ),
            (
                String::new(),
                KeyLimits {
                    tpd: Some(5),
                    ..KeyLimits::default()
                },
            ),
        ];
        assert_eq!(options.key_limits, expected);
        assert_eq!(options.day_reset_minute, 420);
        for bad in ["sk-a", "sk-a=rpm", "sk-a=rpm:x", "sk-a=rph:3", "sk-a="] {
            assert!(parse(&["--key-limits", bad]).is_err(), "{bad}");
        }
        assert!(parse(&["--day-reset-minute", "1440"]).is_err());
    }

    #[test]
    fn bad_arguments_are_explained() {
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert!(parse(&["--latency-ms", "soon"]).is_err());
        assert!(parse(&["--model"]).is_err());
        assert!(parse(&["--port", "1"]).is_err());
    }
}
