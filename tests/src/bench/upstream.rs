//! The `freerouter-simulator` binary as a process of its own, so the CPU it spends is measured
//! apart from the load generator's (which runs in the benchmark's process).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A running simulator process; killed when dropped.
#[derive(Debug)]
pub struct SimulatorProcess {
    addr: String,
    child: tokio::process::Child,
}

impl SimulatorProcess {
    /// Starts `binary` on 127.0.0.1 and an ephemeral port serving `model`, which answers `answer`
    /// after `latency_ms`; waits until it says where it listens.
    pub async fn start(
        binary: &Path,
        model: &str,
        answer: &str,
        latency_ms: u64,
    ) -> Result<SimulatorProcess, String> {
        let mut child = tokio::process::Command::new(binary)
            .args(["--model", model, "--answer", answer])
            .args(["--latency-ms", &latency_ms.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout from the simulator")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .map_err(|_| "the simulator did not say where it listens within 20 s".to_string())?
            .map_err(|e| format!("reading the simulator's output: {e}"))?
            .unwrap_or_default();
        let addr = first
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line from the simulator: {first:?}"))?
            .to_string();
        // Nothing more is read; keep draining so the process can never block on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(SimulatorProcess { addr, child })
    }

    /// `http://ADDR/v1`, a provider's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }
}
