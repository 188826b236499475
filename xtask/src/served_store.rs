//! `dagster-wandb server` as a child process, for the interop suite and the transfer benchmark.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

/// `dagster-wandb server` on a free port over `store`, killed when dropped.
pub(crate) struct ServedStore {
    child: Child,
    /// The base URL it printed.
    pub(crate) url: String,
}

impl ServedStore {
    /// Starts `cli server --port 0 --store STORE` with `extra_args` and its log going to `stderr`, and waits
    /// for the URL it prints.
    pub(crate) fn start(cli: &Path, store: &Path, extra_args: &[&str], stderr: Stdio) -> Result<Self> {
        let mut child = Command::new(cli)
            .args(["server", "--port", "0", "--store"])
            .arg(store)
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("cannot start dagster-wandb server")?;
        let stdout = child.stdout.take().context("no stdout")?;
        // Owned from here, so a failure below still kills the child.
        let mut server = ServedStore { child, url: String::new() };
        for line in BufReader::new(stdout).lines() {
            if let Some(url) = line?.strip_prefix("WANDB_BASE_URL=") {
                server.url = url.trim().to_owned();
                return Ok(server);
            }
        }
        bail!("dagster-wandb server exited before printing its URL")
    }

    /// The server's peak resident memory so far (`VmHWM`).
    pub(crate) fn peak_rss(&self) -> Option<u64> {
        self.status_bytes("VmHWM:")
    }

    /// The server's resident memory now (`VmRSS`).
    pub(crate) fn rss(&self) -> Option<u64> {
        self.status_bytes("VmRSS:")
    }

    fn status_bytes(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib << 10)
    }
}

impl Drop for ServedStore {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
