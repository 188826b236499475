//! Progress on stderr: a bar on a terminal, one status line every [`STATUS_EVERY`] elsewhere (CI logs, Dagster
//! steps), nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use artifact_core::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::output::{human_size, notice};

/// How often a status line is written when stderr is not a terminal, unless [`STATUS_EVERY_VAR`] says.
pub(crate) const STATUS_EVERY: Duration = Duration::from_secs(10);

/// Seconds between status lines (`0.5`, `60`) for logs that want them more or less often.
pub(crate) const STATUS_EVERY_VAR: &str = "DAGSTER_WANDB_PROGRESS_INTERVAL";

static QUIET: AtomicBool = AtomicBool::new(false);

/// `--quiet`: no progress of any kind for the rest of the process.
pub(crate) fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `--quiet` was given.
pub(crate) fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A bar on a terminal, status lines elsewhere, nothing with `--quiet`.
pub(crate) fn stderr_progress() -> Option<Arc<dyn Progress>> {
    if is_quiet() {
        return None;
    }
    if !std::io::stderr().is_terminal() {
        let every = std::env::var(STATUS_EVERY_VAR)
            .ok()
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|secs| secs.is_finite() && *secs >= 0.0)
            .map_or(STATUS_EVERY, Duration::from_secs_f64);
        return Some(Arc::new(StatusLines::new(every)));
    }
    // Hidden until a phase begins, so nothing is drawn for commands that never report progress.
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
    // wide_bar takes what the terminal's width leaves, so the line never wraps (an 80-column one included).
    let style = ProgressStyle::with_template("{msg:>11} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    Some(Arc::new(Bar(bar)))
}

/// A [`Progress`] drawn with indicatif.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn begin(&self, phase: &str, total_bytes: u64) {
        self.0.set_draw_target(ProgressDrawTarget::stderr());
        self.0.reset();
        self.0.set_length(total_bytes);
        self.0.set_message(phase.to_owned());
    }

    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// One line on stderr every `every` while a phase lasts longer than that: bytes, files, rate. For logs, where a
/// bar would be thousands of carriage returns.
pub(crate) struct StatusLines {
    every: Duration,
    bytes: AtomicU64,
    files: AtomicU64,
    phase: Mutex<Option<Phase>>,
}

struct Phase {
    name: String,
    total_bytes: u64,
    total_files: Option<u64>,
    started: Instant,
    last_said: Instant,
}

impl StatusLines {
    pub(crate) fn new(every: Duration) -> StatusLines {
        StatusLines { every, bytes: AtomicU64::new(0), files: AtomicU64::new(0), phase: Mutex::new(None) }
    }

    /// The line for now, when one is due.
    fn due(&self) -> Option<String> {
        // Whoever holds the lock is about to decide the same thing.
        let mut guard = self.phase.try_lock().ok()?;
        let phase = guard.as_mut()?;
        let now = Instant::now();
        if now.duration_since(phase.last_said) < self.every {
            return None;
        }
        phase.last_said = now;
        Some(phase.line(self.bytes.load(Ordering::Relaxed), self.files.load(Ordering::Relaxed), now))
    }
}

impl Phase {
    fn line(&self, bytes: u64, files: u64, now: Instant) -> String {
        let elapsed = now.duration_since(self.started);
        let mut line = format!("{}: {} of {}", self.name, human_size(bytes), human_size(self.total_bytes));
        if self.total_bytes > 0 {
            line.push_str(&format!(" ({:.0}%)", bytes as f64 * 100.0 / self.total_bytes as f64));
        }
        match self.total_files {
            Some(total) => line.push_str(&format!(", {files} of {total} files")),
            None if files > 0 => line.push_str(&format!(", {files} files")),
            None => {}
        }
        let rate = bytes as f64 / elapsed.as_secs_f64().max(1e-3);
        line.push_str(&format!(", {}/s, {:.1} s elapsed", human_size(rate as u64), elapsed.as_secs_f64()));
        line
    }
}

impl Progress for StatusLines {
    fn begin(&self, phase: &str, total_bytes: u64) {
        self.bytes.store(0, Ordering::Relaxed);
        self.files.store(0, Ordering::Relaxed);
        let now = Instant::now();
        let phase = Phase { name: phase.to_owned(), total_bytes, total_files: None, started: now, last_said: now };
        *self.phase.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(phase);
    }

    fn advance(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(line) = self.due() {
            notice(&line);
        }
    }

    fn set_files(&self, total_files: u64) {
        if let Some(phase) = self.phase.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_mut() {
            phase.total_files = Some(total_files);
        }
    }

    fn file_done(&self) {
        self.files.fetch_add(1, Ordering::Relaxed);
        if let Some(line) = self.due() {
            notice(&line);
        }
    }

    fn finish(&self) {
        // A phase that took longer than one interval ends with its total, so the log shows it completed.
        let mut guard = self.phase.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(phase) = guard.take() {
            let now = Instant::now();
            if now.duration_since(phase.started) >= self.every {
                notice(&phase.line(self.bytes.load(Ordering::Relaxed), self.files.load(Ordering::Relaxed), now));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_says_bytes_files_and_rate() {
        let started = Instant::now();
        let phase = Phase {
            name: "downloading".to_owned(),
            total_bytes: 4 << 20,
            total_files: Some(10),
            started,
            last_said: started,
        };
        let line = phase.line(1 << 20, 3, started + Duration::from_secs(2));
        assert_eq!(line, "downloading: 1.0 MiB of 4.0 MiB (25%), 3 of 10 files, 512.0 KiB/s, 2.0 s elapsed");
    }

    #[test]
    fn lines_are_due_once_per_interval() {
        let lines = StatusLines::new(Duration::from_millis(50));
        lines.begin("hashing", 100);
        assert!(lines.due().is_none(), "nothing before the first interval");
        std::thread::sleep(Duration::from_millis(60));
        assert!(lines.due().is_some_and(|l| l.starts_with("hashing: 0 B of 100 B (0%)")));
        assert!(lines.due().is_none(), "not twice in one interval");
        lines.begin("storing", 100);
        assert!(lines.due().is_none(), "a new phase starts its own interval");
    }
}
