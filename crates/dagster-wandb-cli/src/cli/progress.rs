//! Progress bars on stderr, shown only when stderr is a terminal.

use std::io::IsTerminal;
use std::sync::Arc;

use artifact_core::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A [`Progress`] drawn with indicatif.
pub(crate) struct Bar(ProgressBar);

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

/// A progress bar when stderr is a terminal, else nothing.
pub(crate) fn stderr_progress() -> Option<Arc<dyn Progress>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    // Hidden until a phase begins, so nothing is drawn for commands that never report progress.
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
    let style = ProgressStyle::with_template("{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    Some(Arc::new(Bar(bar)))
}
