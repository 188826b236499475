//! Runs: what a step logs (metric rows with the SDK's step rules, the summary, config, the exit code) and the
//! artifacts it logs and uses, on any [`Backend`], resumed from another process when its id exists.
//!
//! [`Run::log`] only stamps the row and hands it to a background writer through a bounded queue, so the
//! caller's thread does little work and memory stays bounded (a slow backend slows the caller instead). Rows
//! go to the writer 256 at a time, or at once when the previous hand-off is 50 ms old; rows logged in a burst
//! that then stops wait for the next `log`, [`Run::flush`], a summary or config update, or [`Run::finish`]. The
//! writer batches rows: to a server at most one request per `transmit_interval` (wandb-core's 15 s), to a store
//! one append per `flush_interval`. [`Run::finish`] sends what is left and the exit code, and reports any error
//! the writer met.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use artifact_core::{Artifact, ArtifactAddress};
use serde_json::{Map, Value, json};
use wandb_store::{HISTORY_FILE, ProjectRef, RunOptions, SUMMARY_FILE, StreamChunk};

use crate::backend::{Backend, LogOptions, LoggedArtifact, UpsertedPart};
use crate::blocking::{Api, ArtifactHandle, block_on};
use crate::error::{Error, Result};

/// What to do with a run id that may already exist (the SDK's `resume`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Resume {
    /// Resume it if it exists, else start it.
    #[default]
    Allow,
    /// It must exist.
    Must,
    /// It must not exist.
    Never,
}

/// How to start a run (`wandb.init`'s arguments).
///
/// ```
/// use wandb_api::{Resume, RunSettings};
/// let settings = RunSettings::new("artifacts-example").job_type("train").id("run-1").resume(Resume::Must);
/// assert_eq!(settings.project.as_deref(), Some("artifacts-example"));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RunSettings {
    /// The entity; the settings' when absent.
    pub entity: Option<String>,
    /// The project; the settings' when absent.
    pub project: Option<String>,
    /// The id; a random 8-character one when absent.
    pub id: Option<String>,
    /// The display name.
    pub name: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// The kind of step.
    pub job_type: Option<String>,
    /// Config values, merged into a resumed run's.
    pub config: Map<String, Value>,
    /// What to do when the id exists (or does not).
    pub resume: Resume,
    /// Rows queued between the caller and the writer before `log` waits.
    pub queue_capacity: usize,
    /// A server gets at most one `file_stream` request per interval (the first at once).
    pub transmit_interval: Duration,
    /// A store gets the rows at least this often.
    pub flush_interval: Duration,
    /// Buffered history bytes that force a request before the interval (wandb-core's limit is ~10 MiB).
    pub max_request_bytes: usize,
}

impl RunSettings {
    /// A run in `project` (`wandb.init(project=…)`).
    pub fn new(project: &str) -> Self {
        RunSettings { project: Some(project.to_owned()), ..Default::default() }
    }

    /// In entity `entity`.
    pub fn entity(mut self, entity: &str) -> Self {
        self.entity = Some(entity.to_owned());
        self
    }

    /// With id `id` (resumed when it exists, unless [`Resume::Never`]).
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_owned());
        self
    }

    /// With display name `name`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Of job type `job_type` (`load-data`, `train`, …).
    pub fn job_type(mut self, job_type: &str) -> Self {
        self.job_type = Some(job_type.to_owned());
        self
    }

    /// With these tags.
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// With these config values.
    pub fn config(mut self, config: Map<String, Value>) -> Self {
        self.config = config;
        self
    }

    /// Resuming as `resume` says.
    pub fn resume(mut self, resume: Resume) -> Self {
        self.resume = resume;
        self
    }

    /// The run record's options for run `id`.
    fn run_options(&self, id: &str) -> RunOptions {
        RunOptions {
            id: Some(id.to_owned()),
            name: self.name.clone(),
            job_type: self.job_type.clone(),
            tags: self.tags.clone(),
        }
    }
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            entity: None,
            project: None,
            id: None,
            name: None,
            tags: Vec::new(),
            job_type: None,
            config: Map::new(),
            resume: Resume::Allow,
            queue_capacity: 16_384,
            transmit_interval: Duration::from_secs(15),
            flush_interval: Duration::from_millis(200),
            max_request_bytes: 8 << 20,
        }
    }
}

/// Where a run stood when resumed: stream offsets, the summary, the last step and the config.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResumePoint {
    /// History rows stored.
    pub history_line_count: u64,
    /// Console lines stored.
    pub log_line_count: u64,
    /// System-metric lines stored.
    pub events_line_count: u64,
    /// The summary.
    pub summary: Map<String, Value>,
    /// The step of the last history row, or the summary's `_step`.
    pub last_step: Option<u64>,
    /// The config (plain values).
    pub config: Map<String, Value>,
    /// Tags.
    pub tags: Vec<String>,
}

impl ResumePoint {
    pub(crate) fn new(
        history_line_count: u64,
        log_line_count: u64,
        events_line_count: u64,
        summary: Map<String, Value>,
        last_row_step: Option<u64>,
        config: Map<String, Value>,
        tags: Vec<String>,
    ) -> Self {
        let last_step = last_row_step.or_else(|| summary.get("_step").and_then(Value::as_u64));
        ResumePoint { history_line_count, log_line_count, events_line_count, summary, last_step, config, tags }
    }

    /// The step the next row gets: after the last one, when there is history (as wandb-core computes it).
    pub fn starting_step(&self) -> u64 {
        match self.last_step {
            Some(step) if self.history_line_count > 0 => step + 1,
            _ => 0,
        }
    }

    /// The runtime already spent, from the summary (`_wandb.runtime`, else `_runtime`).
    pub fn runtime(&self) -> f64 {
        self.summary
            .get("_wandb")
            .and_then(|w| w.get("runtime"))
            .and_then(Value::as_f64)
            .or_else(|| self.summary.get("_runtime").and_then(Value::as_f64))
            .unwrap_or(0.0)
    }
}

/// Options of one [`Run::log_with`] call (the SDK's `step` and `commit`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStep {
    /// Log at this step: a later step commits the pending row first; an earlier one is dropped with a warning.
    pub step: Option<u64>,
    /// Commit the row now (`Some(true)`), keep it open for more values (`Some(false)`), or the SDK's default:
    /// commit unless a step was given.
    pub commit: Option<bool>,
}

/// Rows handed to the writer at once: one channel operation (and at most one wake-up) per batch.
const HANDOFF_ROWS: usize = 256;
/// A row waits at most this long in the caller's batch while rows keep coming (a slow logger's rows go at once).
const HANDOFF_DELAY: Duration = Duration::from_millis(50);

/// A committed row and the stamps the writer adds to it (`_step`, `_runtime`, `_timestamp`): the caller only
/// reads the clock, and the writer writes the keys.
struct StampedRow {
    values: Map<String, Value>,
    step: u64,
    runtime: f64,
    timestamp: f64,
}

enum Message {
    Rows(Vec<StampedRow>),
    Summary(Map<String, Value>),
    Config(Map<String, Value>),
    Finish(i64),
}

/// A run (`wandb.init`'s result): it logs metric rows, summary and config in the background, and logs and uses
/// artifacts, recording the lineage. Dropping it without [`Run::finish`] finishes it with exit code 0 (1 while
/// panicking).
///
/// ```
/// use serde_json::json;
/// use wandb_api::{Api, RunSettings, Settings};
///
/// let dir = tempfile::tempdir()?;
/// let api = Api::new(Settings::embedded(dir.path()).with_project("demo"))?;
/// let mut run = api.init(RunSettings::default().id("r1"))?;
/// for epoch in 0..3 {
///     run.log(json!({"loss": 1.0 / f64::from(epoch + 1)}).as_object().unwrap().clone())?;
/// }
/// run.finish()?;
/// let history = api.run_history("r1")?;
/// assert_eq!(history.len(), 3);
/// assert_eq!(history[2]["_step"], 2);
/// assert_eq!(api.run("r1")?.summary["loss"], json!(1.0 / 3.0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Run {
    api: Api,
    project: ProjectRef,
    id: String,
    resumed: bool,
    step: u64,
    pending: Map<String, Value>,
    started: Instant,
    runtime_offset: f64,
    config: Map<String, Value>,
    batch: Vec<StampedRow>,
    handed_off: Instant,
    /// `_timestamp` is this plus the time since `started`: one clock read per row.
    started_unix: f64,
    /// Batches the writer is done with come back, to be freed on this thread: freeing memory another thread
    /// allocated contends on the allocator's locks and tripled the cost of `log`.
    recycled: Receiver<Vec<StampedRow>>,
    sender: Option<SyncSender<Message>>,
    writer: Option<JoinHandle<Result<()>>>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run").field("project", &self.project).field("id", &self.id).field("step", &self.step).finish()
    }
}

impl Run {
    /// Starts (or resumes) a run on `api`'s backend: the resume rule, the run record, the merged config.
    /// [`Api::init`] is the usual way in.
    ///
    /// # Errors
    /// [`Error::ResumeRefused`] with the SDK's messages, invalid ids, names or tags, backend errors.
    pub fn start(api: Api, settings: RunSettings) -> Result<Self> {
        let project = api.project_of(settings.entity.as_deref(), settings.project.as_deref())?;
        let id = settings.id.clone().unwrap_or_else(wandb_store::generate_run_id);
        let backend = api.backend().clone();
        let existing = block_on(backend.resume_point(&project, &id))?;
        check_resume(settings.resume, &id, existing.is_some())?;
        block_on(backend.resume_run(&project, &settings.run_options(&id)))?;
        let point = existing.unwrap_or_default();
        let mut config = point.config.clone();
        config.extend(settings.config.clone());
        block_on(backend.update_run_config(&project, &id, &config))?;
        Ok(Self::spawn(api, project, id, &settings, point, config))
    }

    fn spawn(
        api: Api,
        project: ProjectRef,
        id: String,
        settings: &RunSettings,
        point: ResumePoint,
        config: Map<String, Value>,
    ) -> Self {
        let resumed = point.history_line_count > 0 || !point.summary.is_empty();
        let (sender, receiver) = sync_channel(settings.queue_capacity.div_ceil(HANDOFF_ROWS).max(1));
        let (recycle, recycled) = channel();
        let backend = api.backend().clone();
        let interval = if backend.batches_run_streams() { settings.transmit_interval } else { settings.flush_interval };
        // A server tells a live run from a crashed one by its requests: heartbeats when there is nothing to send.
        let heartbeat = backend.batches_run_streams().then_some(HEARTBEAT_INTERVAL);
        let writer = Writer {
            backend,
            project: project.clone(),
            run_id: id.clone(),
            interval,
            heartbeat,
            max_bytes: settings.max_request_bytes.max(1),
            history_offset: point.history_line_count,
            lines: Vec::new(),
            buffered_bytes: 0,
            summary: point.summary.clone(),
            summary_dirty: resumed,
            runtime_offset: point.runtime(),
            started: Instant::now(),
            recycle,
            last_stamps: None,
        };
        let handle = std::thread::Builder::new()
            .name(format!("wandb-run-{id}"))
            .spawn(move || writer.run(receiver))
            .expect("spawning the run writer thread");
        Run {
            api,
            project,
            resumed,
            step: point.starting_step(),
            runtime_offset: point.runtime(),
            id,
            pending: Map::new(),
            started: Instant::now(),
            config,
            batch: Vec::with_capacity(HANDOFF_ROWS),
            handed_off: Instant::now(),
            started_unix: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
            recycled,
            sender: Some(sender),
            writer: Some(handle),
        }
    }

    /// The run id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `entity/project/id`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.project, self.id)
    }

    /// Whether an existing run was resumed.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// The step the next committed row gets.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The config (a resumed run's merged with this process's updates).
    pub fn config(&self) -> &Map<String, Value> {
        &self.config
    }

    /// Logs a row at the current step and commits it (`wandb.log(row)`).
    ///
    /// # Errors
    /// [`Error::RunWriter`] when the writer has stopped (its own error comes from [`Run::finish`]).
    pub fn log(&mut self, row: Map<String, Value>) -> Result<()> {
        self.log_with(row, LogStep::default())
    }

    /// Logs a row with the SDK's `step` and `commit` rules: values logged without committing merge into the next
    /// committed row; a row gets `_step`, `_runtime` (seconds since start, continuing a resumed run's) and
    /// `_timestamp` (Unix seconds).
    ///
    /// # Errors
    /// [`Error::RunWriter`] when the writer has stopped.
    pub fn log_with(&mut self, row: Map<String, Value>, options: LogStep) -> Result<()> {
        if let Some(step) = options.step {
            if step < self.step {
                tracing::warn!(
                    "Tried to log to step {step} that is less than the current step {}. Steps must be monotonically increasing, so this data will be ignored.",
                    self.step
                );
                return Ok(());
            }
            if step > self.step {
                self.commit()?;
                self.step = step;
            }
        }
        if self.pending.is_empty() {
            self.pending = row;
        } else {
            self.pending.extend(row);
        }
        let commit = options.commit.unwrap_or(options.step.is_none());
        if commit { self.commit() } else { Ok(()) }
    }

    fn commit(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let values = std::mem::take(&mut self.pending);
        let now = Instant::now();
        let elapsed = now.duration_since(self.started).as_secs_f64();
        self.batch.push(StampedRow {
            values,
            step: self.step,
            runtime: self.runtime_offset + elapsed,
            timestamp: self.started_unix + elapsed,
        });
        self.step += 1;
        if self.batch.len() >= HANDOFF_ROWS || now.duration_since(self.handed_off) >= HANDOFF_DELAY {
            self.handed_off = now;
            self.hand_off()?;
        }
        Ok(())
    }

    /// Sends the caller's batch of rows to the writer.
    fn hand_off(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        // Reuse a returned batch's allocation; the rows in it are freed here, on the thread that made them.
        let mut next = Vec::new();
        while let Ok(mut done) = self.recycled.try_recv() {
            done.clear();
            next = done;
        }
        if next.capacity() == 0 {
            next.reserve(HANDOFF_ROWS);
        }
        let rows = std::mem::replace(&mut self.batch, next);
        self.send(Message::Rows(rows))
    }

    /// Hands every committed row to the writer now (they are otherwise handed over in batches).
    ///
    /// # Errors
    /// [`Error::RunWriter`] when the writer has stopped.
    pub fn flush(&mut self) -> Result<()> {
        self.handed_off = Instant::now();
        self.hand_off()
    }

    /// Sets summary values (`run.summary.update(…)`); they replace what the history set for those keys.
    ///
    /// # Errors
    /// [`Error::RunWriter`] when the writer has stopped.
    pub fn summary_update(&mut self, values: Map<String, Value>) -> Result<()> {
        self.hand_off()?;
        self.send(Message::Summary(values))
    }

    /// Updates config values (`run.config.update(…)`).
    ///
    /// # Errors
    /// [`Error::RunWriter`] when the writer has stopped.
    pub fn config_update(&mut self, values: Map<String, Value>) -> Result<()> {
        self.config.extend(values);
        self.hand_off()?;
        self.send(Message::Config(self.config.clone()))
    }

    fn send(&mut self, message: Message) -> Result<()> {
        let stopped = || Error::RunWriter {
            run_id: self.id.clone(),
            reason: "the run's writer has stopped; finish() reports why".to_owned(),
        };
        self.sender.as_ref().ok_or_else(stopped)?.send(message).map_err(|_| stopped())
    }

    /// Finishes the run with exit code 0 (`run.finish()`): commits the pending row, sends everything left, and
    /// waits for the writer.
    ///
    /// # Errors
    /// The first error the writer met (the backend's), or [`Error::RunWriter`].
    pub fn finish(self) -> Result<()> {
        self.finish_with_exit_code(0)
    }

    /// Finishes the run with `exit_code` (`run.finish(exit_code=…)`; non-zero marks it failed).
    ///
    /// # Errors
    /// See [`Run::finish`].
    pub fn finish_with_exit_code(mut self, exit_code: i64) -> Result<()> {
        self.finish_inner(exit_code)
    }

    /// The API the run was started on.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The run's entity and project.
    pub fn project(&self) -> &ProjectRef {
        &self.project
    }

    /// Logs `artifact` as this run's output with custom `aliases` (`run.log_artifact(artifact, aliases=…)`);
    /// identical content dedups to the latest version.
    ///
    /// # Errors
    /// See [`Backend::log_artifact`].
    pub fn log_artifact(&self, artifact: &Artifact, aliases: &[&str]) -> Result<LoggedArtifact> {
        self.log_artifact_with(artifact, LogOptions::default().with_aliases(aliases.iter().copied()))
    }

    /// Logs `artifact` as this run's output with `options` (its run id is this run's).
    ///
    /// # Errors
    /// See [`Backend::log_artifact`].
    pub fn log_artifact_with(&self, artifact: &Artifact, options: LogOptions) -> Result<LoggedArtifact> {
        let options = options.with_run_id(self.id.clone());
        block_on(self.api.backend().log_artifact(&self.project, artifact, &options))
    }

    /// Adds this process's part to the distributed artifact `distributed_id` (`run.upsert_artifact`).
    ///
    /// # Errors
    /// See [`Backend::upsert_artifact`].
    pub fn upsert_artifact(&self, artifact: &Artifact, distributed_id: &str) -> Result<UpsertedPart> {
        let options = LogOptions::default().with_run_id(self.id.clone());
        block_on(self.api.backend().upsert_artifact(&self.project, artifact, distributed_id, &options))
    }

    /// Adds this process's part and commits the distributed artifact `distributed_id` (`run.finish_artifact`).
    ///
    /// # Errors
    /// See [`Backend::finish_artifact`].
    pub fn finish_artifact(
        &self,
        artifact: &Artifact,
        distributed_id: &str,
        aliases: &[&str],
    ) -> Result<LoggedArtifact> {
        let options = LogOptions::default().with_aliases(aliases.iter().copied()).with_run_id(self.id.clone());
        block_on(self.api.backend().finish_artifact(&self.project, artifact, distributed_id, &options))
    }

    /// The version `path` names (`[[ENTITY/]PROJECT/]NAME[:ALIAS]`, `latest` by default; entity and project
    /// default to the run's), recorded as this run's input (`run.use_artifact`).
    ///
    /// # Errors
    /// Address parsing errors, [`Error::ArtifactNotFound`], backend errors.
    pub fn use_artifact(&self, path: &str) -> Result<ArtifactHandle> {
        let address = ArtifactAddress::parse(path)?;
        let source = ProjectRef::new(
            address.entity.as_deref().unwrap_or(self.project.entity()),
            address.project.as_deref().unwrap_or(self.project.project()),
        )?;
        let selector = address.alias.as_deref().unwrap_or("latest");
        let backend = self.api.backend();
        let version = block_on(backend.artifact(&source, &address.name, selector))?;
        block_on(backend.record_use(&self.project, &self.id, &version))?;
        Ok(self.api.handle(version))
    }

    /// Records `artifact` (a handle from anywhere) as this run's input.
    ///
    /// # Errors
    /// Backend errors.
    pub fn use_handle(&self, artifact: &ArtifactHandle) -> Result<()> {
        block_on(self.api.backend().record_use(&self.project, &self.id, artifact.version()))
    }

    fn finish_inner(&mut self, exit_code: i64) -> Result<()> {
        let committed = self.commit().and_then(|()| self.hand_off());
        if let Some(sender) = self.sender.take() {
            let _ = sender.send(Message::Finish(exit_code));
        }
        let written = match self.writer.take() {
            Some(writer) => writer.join().unwrap_or_else(|_| {
                Err(Error::RunWriter { run_id: self.id.clone(), reason: "its writer panicked".to_owned() })
            }),
            None => Ok(()),
        };
        written.and(committed)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let code = i64::from(std::thread::panicking());
            if let Err(e) = self.finish_inner(code) {
                tracing::warn!("finishing run {} failed: {e}", self.id);
            }
        }
    }
}

/// The history line of `row`: its values, then `_step`, `_runtime` and `_timestamp`.
fn stamped_line(row: &StampedRow) -> String {
    let mut line = Vec::with_capacity(160);
    serde_json::to_writer(&mut line, &row.values).expect("JSON values serialise");
    line.pop();
    if !row.values.is_empty() {
        line.push(b',');
    }
    line.extend_from_slice(b"\"_step\":");
    serde_json::to_writer(&mut line, &row.step).expect("integers serialise");
    line.extend_from_slice(b",\"_runtime\":");
    serde_json::to_writer(&mut line, &row.runtime).expect("floats serialise");
    line.extend_from_slice(b",\"_timestamp\":");
    serde_json::to_writer(&mut line, &row.timestamp).expect("floats serialise");
    line.push(b'}');
    String::from_utf8(line).expect("serde_json writes UTF-8")
}

fn check_resume(resume: Resume, id: &str, exists: bool) -> Result<()> {
    match (resume, exists) {
        (Resume::Must, false) => Err(Error::ResumeRefused {
            message: format!(
                "You provided an invalid value for the `resume` argument. The value 'must' is not a valid option for resuming the run ({id}) that has not been initialized. Please check your inputs and try again with a valid run ID. If you are trying to start a new run, please omit the `resume` argument or use `resume='allow'`."
            ),
        }),
        (Resume::Never, true) => Err(Error::ResumeRefused {
            message: format!(
                "You provided an invalid value for the `resume` argument. The value 'never' is not a valid option for resuming a run ({id}) that already exists. Please check your inputs and try again with a valid run ID."
            ),
        }),
        _ => Ok(()),
    }
}

/// How often a run writing to a server sends an empty `file_stream` request when it has nothing else to send
/// (wandb-core's `defaultHeartbeatInterval`): the server reads a run without them as crashed.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

/// The background half of a run: batches rows, keeps the summary, and sends.
struct Writer {
    backend: Arc<dyn Backend>,
    project: ProjectRef,
    run_id: String,
    interval: Duration,
    /// Every how long an idle run says it is alive (to a server), if at all.
    heartbeat: Option<Duration>,
    max_bytes: usize,
    history_offset: u64,
    lines: Vec<String>,
    buffered_bytes: usize,
    summary: Map<String, Value>,
    summary_dirty: bool,
    runtime_offset: f64,
    started: Instant,
    recycle: Sender<Vec<StampedRow>>,
    last_stamps: Option<(u64, f64, f64)>,
}

impl Writer {
    fn run(mut self, receiver: Receiver<Message>) -> Result<()> {
        let mut last_sent: Option<Instant> = None;
        loop {
            let has_data = !self.lines.is_empty() || self.summary_dirty;
            let message = if has_data {
                let due = last_sent.map_or(Duration::ZERO, |t| self.interval.saturating_sub(t.elapsed()));
                receiver.recv_timeout(due)
            } else if let Some(every) = self.heartbeat {
                let due = last_sent.map_or(every, |t| every.saturating_sub(t.elapsed()));
                match receiver.recv_timeout(due) {
                    Err(RecvTimeoutError::Timeout) => {
                        let alive = StreamChunk::default();
                        // A missed heartbeat is not worth failing the run for: the next one may arrive.
                        if let Err(e) = block_on(self.backend.write_run_stream(&self.project, &self.run_id, &alive)) {
                            tracing::warn!(run = self.run_id, error = %e, "could not send the run's heartbeat");
                        }
                        last_sent = Some(Instant::now());
                        continue;
                    }
                    message => message,
                }
            } else {
                receiver.recv().map_err(|_| RecvTimeoutError::Disconnected)
            };
            match message {
                Ok(Message::Rows(rows)) => {
                    for row in &rows {
                        let line = stamped_line(row);
                        self.buffered_bytes += line.len() + 1;
                        self.lines.push(line);
                        self.last_stamps = Some((row.step, row.runtime, row.timestamp));
                        // The summary holds each key's latest value; a key is allocated once, here.
                        for (key, value) in &row.values {
                            match self.summary.get_mut(key) {
                                Some(slot) => slot.clone_from(value),
                                None => {
                                    self.summary.insert(key.clone(), value.clone());
                                }
                            }
                        }
                    }
                    // Back to the caller, who made them and frees them (a dropped Run no longer listens).
                    let _ = self.recycle.send(rows);
                    self.summary_dirty = true;
                    if self.buffered_bytes >= self.max_bytes {
                        self.flush(None)?;
                        last_sent = Some(Instant::now());
                    }
                }
                Ok(Message::Summary(values)) => {
                    self.summary.extend(values);
                    self.summary_dirty = true;
                }
                Ok(Message::Config(config)) => {
                    block_on(self.backend.update_run_config(&self.project, &self.run_id, &config))?;
                }
                Ok(Message::Finish(code)) => return self.flush(Some(code)),
                Err(RecvTimeoutError::Timeout) => {
                    self.flush(None)?;
                    last_sent = Some(Instant::now());
                }
                // The run was dropped mid-way without finishing (its thread ended): a crash.
                Err(RecvTimeoutError::Disconnected) => return self.flush(Some(1)),
            }
        }
    }

    fn flush(&mut self, exit_code: Option<i64>) -> Result<()> {
        if let Some((step, runtime, timestamp)) = self.last_stamps.take() {
            self.summary.insert("_step".to_owned(), step.into());
            self.summary.insert("_runtime".to_owned(), runtime.into());
            self.summary.insert("_timestamp".to_owned(), timestamp.into());
        }
        let summary = if self.summary_dirty || exit_code.is_some() {
            let runtime = self.runtime_offset + self.started.elapsed().as_secs_f64();
            self.summary.insert("_wandb".to_owned(), json!({"runtime": runtime.floor() as u64}));
            Some(Value::Object(self.summary.clone()).to_string())
        } else {
            None
        };
        if self.lines.is_empty() && summary.is_none() && exit_code.is_none() {
            return Ok(());
        }
        let lines = std::mem::take(&mut self.lines);
        let count = lines.len() as u64;
        let mut chunk = StreamChunk { complete: exit_code.is_some(), exit_code, ..Default::default() };
        if !lines.is_empty() {
            chunk.files.insert(HISTORY_FILE.to_owned(), (self.history_offset, lines));
        }
        if let Some(summary) = summary {
            chunk.files.insert(SUMMARY_FILE.to_owned(), (0, vec![summary]));
        }
        block_on(self.backend.write_run_stream(&self.project, &self.run_id, &chunk))?;
        self.history_offset += count;
        self.buffered_bytes = 0;
        self.summary_dirty = false;
        Ok(())
    }
}
