//! What a run logs beside its artifacts: history rows, the summary, console output, config, and its state —
//! stored as a W&B server stores `file_stream` data, with the replace-at-offset rule.
//!
//! Layout: `runs/<id>.logs/` holds one file per stream (`wandb-history.jsonl`, `output.log`,
//! `wandb-events.jsonl`, one line each), `wandb-summary.json` (the full summary, replaced on every write), and
//! `state.json` (state, exit code, config, and each stream's line and byte count).

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{EmbeddedStore, ProjectRef, read_json, write_file, write_json};
use crate::error::{Error, Result};

/// The history stream: one JSON object per committed `log`.
pub const HISTORY_FILE: &str = "wandb-history.jsonl";
/// The summary: one line, the full current summary.
pub const SUMMARY_FILE: &str = "wandb-summary.json";
/// The console output stream.
pub const OUTPUT_FILE: &str = "output.log";
/// The system-metrics stream.
pub const EVENTS_FILE: &str = "wandb-events.jsonl";

/// Where a run is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RunState {
    /// Logging (or stopped without saying so).
    #[default]
    Running,
    /// Finished with exit code 0.
    Finished,
    /// Finished with a non-zero exit code.
    Failed,
    /// Stopped without finishing: the verdict when heartbeats stop (a client writing through a server sent
    /// nothing for [`HEARTBEAT_TIMEOUT`]) or when the process that was writing the run on this host is gone.
    /// Never recorded, always worked out when read.
    Crashed,
    /// Stopped on request (a W&B server's; never recorded by the store).
    Killed,
}

/// How long a run written through a server may go without a request from its client before it reads as
/// crashed: ten of the SDK's 30-second heartbeats (clients send an empty `file_stream` request when they have
/// nothing else to send).
pub const HEARTBEAT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Who writes a run, which decides how a crash is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Writer {
    /// This process: crashed once it is gone.
    ThisProcess,
    /// A client over the network (through a server): crashed once its heartbeats stop.
    Client,
}

/// One `file_stream` request: lines for streams at offsets, and the run's completion.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamChunk {
    /// Per stream file: the line index of the first line, and the lines. For [`SUMMARY_FILE`] the last line
    /// is the full summary.
    pub files: BTreeMap<String, (u64, Vec<String>)>,
    /// The run is complete.
    pub complete: bool,
    /// Its exit code (with `complete`).
    pub exit_code: Option<i64>,
}

/// What is stored of a run's logging.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    /// Its state.
    pub state: RunState,
    /// The exit code it finished with.
    pub exit_code: Option<i64>,
    /// The config, as plain values (`{"lr": 0.1}`).
    pub config: Map<String, Value>,
    /// The SDK's own `_wandb` config value (telemetry `t`, versions), kept as the client sent it.
    #[serde(default)]
    pub wandb_config: Map<String, Value>,
    /// Lines per stream file.
    #[serde(default)]
    pub lines: BTreeMap<String, u64>,
    /// Bytes per stream file, to notice a file written without its count (a crash between the two).
    #[serde(default)]
    pub bytes: BTreeMap<String, u64>,
    /// The process that last wrote to the running run, so a reader can tell it crashed (the embedded store's
    /// stand-in for W&B's heartbeats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<RunWriter>,
    /// When the client writing the run through a server last sent anything, in seconds since the Unix epoch
    /// (W&B's heartbeats; set instead of [`RunStatus::writer`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_unix_secs: Option<u64>,
}

/// The process writing a run: its host and process id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunWriter {
    /// The host name.
    pub host: String,
    /// The process id.
    pub pid: u32,
}

impl RunWriter {
    /// This process, on Unix; `None` elsewhere (Windows), where no crash is ever told.
    pub(crate) fn current() -> Option<Self> {
        #[cfg(unix)]
        {
            let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
            Some(RunWriter { host, pid: std::process::id() })
        }
        #[cfg(not(unix))]
        None
    }

    /// True when this writer ran on this host and its process is gone (a process of another user still counts as
    /// alive; a pid reused since reads as alive too, so a crash may go untold, never the other way round).
    fn is_gone(&self) -> bool {
        let Some(here) = Self::current() else { return false };
        here.host == self.host && process_is_gone(self.pid)
    }
}

#[cfg(unix)]
fn process_is_gone(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return false };
    rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
}

#[cfg(not(unix))]
fn process_is_gone(_pid: u32) -> bool {
    false
}

impl RunStatus {
    /// Lines of `file` stored.
    pub fn line_count(&self, file: &str) -> u64 {
        self.lines.get(file).copied().unwrap_or(0)
    }

    /// Whoever was writing this running run is known to have stopped: its process on this host is gone, or its
    /// client's heartbeats stopped [`HEARTBEAT_TIMEOUT`] ago.
    fn writer_stopped(&self) -> bool {
        if let Some(writer) = &self.writer {
            return writer.is_gone();
        }
        self.heartbeat_unix_secs.is_some_and(|at| unix_secs().saturating_sub(at) > HEARTBEAT_TIMEOUT.as_secs())
    }

    fn written_by(&mut self, writer: Writer) {
        match writer {
            Writer::ThisProcess => {
                self.writer = RunWriter::current();
                self.heartbeat_unix_secs = None;
            }
            Writer::Client => {
                self.writer = None;
                self.heartbeat_unix_secs = Some(unix_secs());
            }
        }
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl EmbeddedStore {
    fn logs_dir(&self, project: &ProjectRef, run_id: &str) -> PathBuf {
        self.project_dir(project).join("runs").join(format!("{run_id}.logs"))
    }

    /// The logging status of run `run_id`.
    ///
    /// # Errors
    /// [`Error::RunNotFound`], damaged records.
    pub fn run_status(&self, project: &ProjectRef, run_id: &str) -> Result<RunStatus> {
        self.run(project, run_id)?;
        let mut status: RunStatus = read_json(&self.logs_dir(project, run_id).join("state.json"))?.unwrap_or_default();
        if status.state == RunState::Running && status.writer_stopped() {
            status.state = RunState::Crashed;
        }
        Ok(status)
    }

    /// Records this process as the writer of run `run_id` (see [`RunStatus::writer`]).
    pub(crate) fn record_run_writer(&self, project: &ProjectRef, run_id: &str) -> Result<()> {
        self.record_writer(project, run_id, Writer::ThisProcess)
    }

    /// Records that the client writing run `run_id` through a server was just heard from (a heartbeat): the run
    /// reads as crashed once [`HEARTBEAT_TIMEOUT`] passes without another. A server calls this when a client
    /// creates or resumes a run.
    ///
    /// # Errors
    /// I/O errors, a damaged state record.
    pub fn record_heartbeat(&self, project: &ProjectRef, run_id: &str) -> Result<()> {
        let _lock = self.lock_project(project)?;
        self.record_writer(project, run_id, Writer::Client)
    }

    fn record_writer(&self, project: &ProjectRef, run_id: &str, writer: Writer) -> Result<()> {
        let dir = self.logs_dir(project, run_id);
        fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        let state_path = dir.join("state.json");
        let mut status: RunStatus = read_json(&state_path)?.unwrap_or_default();
        status.written_by(writer);
        write_json(&state_path, &status)
    }

    /// Stores one `file_stream` request for run `run_id`: each stream's lines replace the lines from their offset
    /// on (the common case, an offset at the end, appends); the summary is replaced; `complete` sets the state
    /// from the exit code.
    ///
    /// # Errors
    /// [`Error::RunNotFound`], [`Error::InvalidRunStream`] for a file name that is not a plain name, I/O errors.
    pub fn write_run_stream(&self, project: &ProjectRef, run_id: &str, chunk: &StreamChunk) -> Result<()> {
        self.write_run_stream_by(project, run_id, chunk, Writer::ThisProcess)
    }

    /// [`EmbeddedStore::write_run_stream`] for a client writing through a server: the request is also its
    /// heartbeat (an empty chunk is only that), and the run reads as crashed once they stop for
    /// [`HEARTBEAT_TIMEOUT`].
    ///
    /// # Errors
    /// As [`EmbeddedStore::write_run_stream`].
    pub fn write_client_run_stream(&self, project: &ProjectRef, run_id: &str, chunk: &StreamChunk) -> Result<()> {
        self.write_run_stream_by(project, run_id, chunk, Writer::Client)
    }

    fn write_run_stream_by(
        &self,
        project: &ProjectRef,
        run_id: &str,
        chunk: &StreamChunk,
        writer: Writer,
    ) -> Result<()> {
        self.run(project, run_id)?;
        let _lock = self.lock_project(project)?;
        let dir = self.logs_dir(project, run_id);
        fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        let state_path = dir.join("state.json");
        let mut status: RunStatus = read_json(&state_path)?.unwrap_or_default();
        for (name, (offset, lines)) in &chunk.files {
            let plain = !name.is_empty() && !name.contains(['/', '\\']) && !name.chars().any(char::is_control);
            if !plain || name.starts_with('.') || name == "state.json" {
                return Err(Error::InvalidRunStream { reason: format!("bad stream file name {name:?}") });
            }
            let path = dir.join(name);
            if name == SUMMARY_FILE {
                if let Some(summary) = lines.last() {
                    serde_json::from_str::<Map<String, Value>>(summary).map_err(|e| Error::InvalidRunStream {
                        reason: format!("the summary is not a JSON object: {e}"),
                    })?;
                    write_file(&path, format!("{summary}\n").as_bytes())?;
                }
                continue;
            }
            let (count, bytes) = counted(&path, status.line_count(name), status.bytes.get(name).copied())?;
            let (count, bytes) = if *offset >= count {
                if *offset > count {
                    tracing::warn!("run {run_id}: {name} continues at line {offset} but has {count}; appended");
                }
                append_lines(&path, lines)?;
                (count + lines.len() as u64, bytes + lines.iter().map(|l| l.len() as u64 + 1).sum::<u64>())
            } else {
                splice_lines(&path, *offset, lines)?
            };
            status.lines.insert(name.clone(), count);
            status.bytes.insert(name.clone(), bytes);
        }
        if !chunk.complete {
            status.written_by(writer);
        }
        if chunk.complete {
            status.exit_code = chunk.exit_code;
            status.state = if chunk.exit_code.unwrap_or(0) == 0 { RunState::Finished } else { RunState::Failed };
        } else if status.state != RunState::Running && !chunk.files.is_empty() {
            // A finished run logging again has been resumed.
            status.state = RunState::Running;
            status.exit_code = None;
        }
        write_json(&state_path, &status)
    }

    /// Replaces run `run_id`'s config with `config` (plain values), as a W&B server does with the whole config a
    /// client sends; `wandb` replaces the SDK's own `_wandb` value.
    ///
    /// # Errors
    /// [`Error::RunNotFound`], I/O errors.
    pub fn update_run_config(
        &self,
        project: &ProjectRef,
        run_id: &str,
        config: Map<String, Value>,
        wandb: Option<Map<String, Value>>,
    ) -> Result<()> {
        self.run(project, run_id)?;
        let _lock = self.lock_project(project)?;
        let state_path = self.logs_dir(project, run_id).join("state.json");
        let mut status: RunStatus = read_json(&state_path)?.unwrap_or_default();
        status.config = config;
        if let Some(wandb) = wandb {
            status.wandb_config = wandb;
        }
        write_json(&state_path, &status)
    }

    /// The lines of stream `file` of run `run_id`.
    ///
    /// # Errors
    /// [`Error::RunNotFound`], I/O errors.
    pub fn run_stream_lines(&self, project: &ProjectRef, run_id: &str, file: &str) -> Result<Vec<String>> {
        self.run(project, run_id)?;
        let path = self.logs_dir(project, run_id).join(file);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text.lines().map(str::to_owned).collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    /// The history rows of run `run_id`, in step order (rows without a step last, in log order).
    ///
    /// # Errors
    /// [`Error::RunNotFound`], [`Error::StoreFormat`] for a row that is not a JSON object, I/O errors.
    pub fn run_history(&self, project: &ProjectRef, run_id: &str) -> Result<Vec<Map<String, Value>>> {
        let path = self.logs_dir(project, run_id).join(HISTORY_FILE);
        let mut rows = self
            .run_stream_lines(project, run_id, HISTORY_FILE)?
            .iter()
            .map(|line| {
                serde_json::from_str::<Map<String, Value>>(line).map_err(|e| Error::StoreFormat {
                    path: path.clone(),
                    reason: format!("a history row is not a JSON object: {e}"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        rows.sort_by_key(|row| row.get("_step").and_then(Value::as_u64).unwrap_or(u64::MAX));
        Ok(rows)
    }

    /// The summary of run `run_id` (empty before any).
    ///
    /// # Errors
    /// [`Error::RunNotFound`], [`Error::StoreFormat`], I/O errors.
    pub fn run_summary(&self, project: &ProjectRef, run_id: &str) -> Result<Map<String, Value>> {
        let path = self.logs_dir(project, run_id).join(SUMMARY_FILE);
        match self.run_stream_lines(project, run_id, SUMMARY_FILE)?.last() {
            None => Ok(Map::new()),
            Some(line) => serde_json::from_str(line)
                .map_err(|e| Error::StoreFormat { path, reason: format!("the summary is not a JSON object: {e}") }),
        }
    }
}

/// The line and byte counts of `path`, trusting the recorded ones when the size agrees (else counting).
fn counted(path: &std::path::Path, lines: u64, bytes: Option<u64>) -> Result<(u64, u64)> {
    let size = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(Error::io("stat", path, e)),
    };
    if bytes == Some(size) {
        return Ok((lines, size));
    }
    let text = fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let mut count = text.iter().filter(|&&b| b == b'\n').count() as u64;
    if text.last().is_some_and(|&b| b != b'\n') {
        // A torn last line (a crash mid-append) is dropped: its writer never heard it was stored.
        let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        write_file(path, &text[..keep])?;
        return Ok((count, keep as u64));
    }
    if text.is_empty() {
        count = 0;
    }
    Ok((count, size))
}

fn append_lines(path: &std::path::Path, lines: &[String]) -> Result<()> {
    let mut buffer = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        buffer.extend_from_slice(line.as_bytes());
        buffer.push(b'\n');
    }
    let mut file = OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io("open", path, e))?;
    file.write_all(&buffer).map_err(|e| Error::io("append to", path, e))?;
    file.sync_data().map_err(|e| Error::io("sync", path, e))
}

/// Replaces the lines from `offset` on with `lines` (lines after those are kept), rewriting the file.
fn splice_lines(path: &std::path::Path, offset: u64, lines: &[String]) -> Result<(u64, u64)> {
    let text = fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    let mut all: Vec<&str> = text.lines().collect();
    let start = offset as usize;
    for (i, line) in lines.iter().enumerate() {
        match all.get_mut(start + i) {
            Some(slot) => *slot = line,
            None => all.push(line),
        }
    }
    let mut out = String::with_capacity(text.len());
    for line in &all {
        out.push_str(line);
        out.push('\n');
    }
    write_file(path, out.as_bytes())?;
    Ok((all.len() as u64, out.len() as u64))
}
