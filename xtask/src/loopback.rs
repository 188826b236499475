//! A Python emulator (moto, gcp-storage-emulator) as a child process on a free loopback port.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

/// A child process serving on loopback, killed when dropped.
pub(crate) struct LoopbackService {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
}

impl LoopbackService {
    /// Starts `program` with the arguments `args` makes of a free port, its standard error going to `stderr`,
    /// and waits (up to 30 s) until the port accepts connections.
    pub(crate) fn start(program: &Path, args: impl FnOnce(&str) -> Vec<String>, stderr: Stdio) -> Result<Self> {
        let name = program.file_name().map_or_else(|| program.display().to_string(), |n| n.to_string_lossy().into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(program)
            .args(args(&port.to_string()))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        // Owned from here, so a failure below still kills the child.
        let service = LoopbackService { child, url: format!("http://127.0.0.1:{port}") };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            ensure!(started.elapsed() < Duration::from_secs(30), "{name} did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(service)
    }

    /// Kills the service now (its clients must then manage without it).
    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LoopbackService {
    fn drop(&mut self) {
        self.stop();
    }
}
