//! Command line of the `freerouter-simulator` binary, parsed by hand.

use std::net::SocketAddr;

use super::Simulator;

pub const USAGE: &str = "\
usage: freerouter-simulator [--listen ADDR] [--model ID]... [--latency-ms N]
                            [--first-token-delay-ms N] [--chunk-delay-ms N]

  --listen ADDR              address to bind (default 127.0.0.1:0)
  --model ID                 a model to serve; repeat for more (default: sim-model)
  --latency-ms N             delay before response headers
  --first-token-delay-ms N   streaming: delay before the first content chunk
  --chunk-delay-ms N         streaming: delay between content chunks";

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
    pub latency_ms: u64,
    pub first_token_delay_ms: u64,
    pub chunk_delay_ms: u64,
}

impl Command {
    /// Parses the arguments after the program name; `Err` says what is wrong.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
        let mut options = Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            models: Vec::new(),
            latency_ms: 0,
            first_token_delay_ms: 0,
            chunk_delay_ms: 0,
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
                "--latency-ms" => options.latency_ms = millis(&flag, &value)?,
                "--first-token-delay-ms" => options.first_token_delay_ms = millis(&flag, &value)?,
                "--chunk-delay-ms" => options.chunk_delay_ms = millis(&flag, &value)?,
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

impl Options {
    /// Creates the models with the timings. Request recording is turned off so a long run keeps
    /// its memory flat.
    pub fn apply(&self, sim: &Simulator) {
        sim.set_recording(false);
        for id in &self.models {
            sim.model(id)
                .latency_ms(self.latency_ms)
                .first_token_delay_ms(self.first_token_delay_ms)
                .chunk_delay_ms(self.chunk_delay_ms);
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
    fn bad_arguments_are_explained() {
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert!(parse(&["--latency-ms", "soon"]).is_err());
        assert!(parse(&["--model"]).is_err());
        assert!(parse(&["--port", "1"]).is_err());
    }
}
