//! The temporary files this process is writing right now, so that an interrupted command (SIGINT) can remove
//! them before it exits instead of leaving them for the next run's stale-temporary sweep.
//!
//! Each temporary is registered when it is created and forgotten when its [`Unfinished`] guard drops — after it
//! was renamed into place or removed — so the set holds only what is in flight and never grows with the number
//! of files a command writes.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

static IN_FLIGHT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

fn in_flight() -> MutexGuard<'static, Option<HashSet<PathBuf>>> {
    // A panic while holding the lock leaves a set that is still consistent (inserts and removes are single calls).
    IN_FLIGHT.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A temporary file being written by this process, registered for [`remove_unfinished`] until dropped.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("tmpexample");
/// std::fs::write(&path, b"half")?;
/// let unfinished = io_cache::Unfinished::register(path.clone());
/// assert_eq!(unfinished.path(), path);
/// // An interrupted command removes what is still in flight:
/// assert_eq!(io_cache::remove_unfinished(), 1);
/// assert!(!path.exists());
/// drop(unfinished);
/// assert_eq!(io_cache::remove_unfinished(), 0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Unfinished {
    path: PathBuf,
}

impl Unfinished {
    /// Registers `path`, a temporary this process has just created.
    pub fn register(path: PathBuf) -> Self {
        in_flight().get_or_insert_with(HashSet::new).insert(path.clone());
        Unfinished { path }
    }

    /// The temporary's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(set) = in_flight().as_mut() {
            set.remove(&self.path);
        }
    }
}

impl AsRef<Path> for Unfinished {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// Removes every temporary file this process is still writing (see [`Unfinished`]) and returns how many were
/// there. For the moment before an interrupted process exits: writers still running may fail afterwards, and
/// nothing they would have renamed into place appears, since each is renamed only once complete.
pub fn remove_unfinished() -> usize {
    let paths: Vec<PathBuf> = in_flight().as_mut().map(|set| set.drain().collect()).unwrap_or_default();
    paths
        .iter()
        .filter(|path| match fs::remove_file(path) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not remove an unfinished temporary file");
                false
            }
        })
        .count()
}
