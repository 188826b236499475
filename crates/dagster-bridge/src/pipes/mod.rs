//! Dagster Pipes, implemented from the protocol (see `shared/spec/dagster-pipes.md` §1).
//!
//! [`PipesSession::open`] reads the bootstrap params (env vars, else the CLI flags), loads the context (a file
//! or inline data) and opens the message channel (a file appended to, stdout/stderr, or a buffer written at
//! close). Every message is built in memory and written with one `write_all` of the JSON and its newline, with
//! exactly the keys Dagster's handlers take. `closed` is sent exactly once: by [`PipesSession::close`], by the
//! drop of the session, or by the panic hook with the panic's message.

mod context;
mod metadata;
mod params;

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use serde::Serialize;
use serde_json::{Map, Value, json};

pub use context::{PartitionKeyRange, PartitionTimeWindow, PipesContext, escape_asset_key, parse_asset_key};
pub use metadata::MetadataValue;
pub use params::{CONTEXT_ENV, CONTEXT_FLAG, MESSAGES_ENV, MESSAGES_FLAG, decode_param, encode_param};

use crate::error::{Error, Result};

/// The protocol version every message carries.
pub const PROTOCOL_VERSION: &str = "0.1";

/// A log level of [`PipesSession::log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `WARNING`.
    Warning,
    /// `ERROR`.
    Error,
    /// `CRITICAL`.
    Critical,
}

impl LogLevel {
    fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
            LogLevel::Critical => "CRITICAL",
        }
    }
}

/// The severity of a failed asset check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckSeverity {
    /// `WARN`.
    Warn,
    /// `ERROR`.
    Error,
}

/// An error as Dagster shows it (`PipesException`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PipesException {
    /// The message.
    pub message: String,
    /// Stack lines, outermost first.
    pub stack: Vec<String>,
    /// The error's type name.
    pub name: Option<String>,
    /// The error that caused it.
    pub cause: Option<Box<PipesException>>,
    /// The error being handled when it happened.
    pub context: Option<Box<PipesException>>,
}

impl PipesException {
    /// An exception from a Rust error and its chain of sources (each source becomes the `cause`).
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Self {
        PipesException {
            message: error.to_string(),
            stack: Vec::new(),
            name: None,
            cause: error.source().map(|source| Box::new(PipesException::from_error(source))),
            context: None,
        }
    }
}

/// Where messages go.
enum Channel {
    /// Appended to a file (one `write_all` per line on a handle kept open).
    File {
        file: File,
        path: PathBuf,
    },
    Stdout,
    Stderr,
    /// Kept until close, then written to the stream in one go (`buffered_stdio`).
    Buffered {
        to_stderr: bool,
        buffer: Vec<u8>,
    },
}

struct State {
    channel: Channel,
    closed: bool,
    materialized: HashSet<String>,
}

/// A Dagster Pipes session: the context, and the channel messages go to.
pub struct PipesSession {
    context: PipesContext,
    state: Mutex<State>,
}

impl std::fmt::Debug for PipesSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipesSession").field("context", &self.context).finish_non_exhaustive()
    }
}

impl PipesSession {
    /// Opens the session Dagster set up for this process — from `DAGSTER_PIPES_CONTEXT` and
    /// `DAGSTER_PIPES_MESSAGES`, else from the `--dagster-pipes-context` / `--dagster-pipes-messages` flags —
    /// and sends `opened`. `None` outside Dagster (neither is present), so a binary runs the same without it.
    ///
    /// # Errors
    /// Malformed params or context, one param without the other, an unusable message channel.
    pub fn open() -> Result<Option<Arc<PipesSession>>> {
        Self::open_from_env_and_args(std::env::args().skip(1))
    }

    /// [`PipesSession::open`] with the command-line arguments given.
    ///
    /// # Errors
    /// See [`PipesSession::open`].
    pub fn open_from_env_and_args(args: impl IntoIterator<Item = String>) -> Result<Option<Arc<PipesSession>>> {
        match params::raw_params(args)? {
            None => Ok(None),
            Some((context, messages)) => Self::open_with(&context, &messages).map(Some),
        }
    }

    /// Opens a session from the two encoded params and sends `opened`.
    ///
    /// # Errors
    /// See [`PipesSession::open`].
    pub fn open_with(context_param: &str, messages_param: &str) -> Result<Arc<PipesSession>> {
        let context_params = decode_param(CONTEXT_ENV, context_param)?;
        let message_params = decode_param(MESSAGES_ENV, messages_param)?;
        let context = load_context(&context_params)?;
        let channel = open_channel(&message_params)?;
        let session = Arc::new(PipesSession {
            context,
            state: Mutex::new(State { channel, closed: false, materialized: HashSet::new() }),
        });
        session.send("opened", json!({"extras": session.context.extras}))?;
        Ok(session)
    }

    /// The context Dagster passed.
    pub fn context(&self) -> &PipesContext {
        &self.context
    }

    /// Sends a log line at `level`.
    ///
    /// # Errors
    /// [`Error::Closed`], I/O errors of the channel.
    pub fn log(&self, level: LogLevel, message: &str) -> Result<()> {
        self.send("log", json!({"message": message, "level": level.as_str()}))
    }

    /// Sends an `INFO` log line.
    ///
    /// # Errors
    /// See [`PipesSession::log`].
    pub fn log_info(&self, message: &str) -> Result<()> {
        self.log(LogLevel::Info, message)
    }

    /// Reports the materialization of `asset_key` (escaped form; `None` = the one asset in scope) with
    /// `metadata` and an optional data version. Each asset is materialized at most once per session.
    ///
    /// # Errors
    /// [`Error::ContextAccess`] for an asset not in scope, [`Error::DuplicateMaterialization`],
    /// [`Error::Closed`], I/O errors.
    pub fn report_asset_materialization(
        &self,
        asset_key: Option<&str>,
        metadata: Vec<(String, MetadataValue)>,
        data_version: Option<&str>,
    ) -> Result<()> {
        let asset_key = self.context.resolve_asset_key(asset_key)?;
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if !state.materialized.insert(asset_key.clone()) {
                return Err(Error::DuplicateMaterialization { asset_key });
            }
        }
        let params = json!({
            "asset_key": asset_key, "metadata": metadata_map(metadata), "data_version": data_version,
        });
        self.send("report_asset_materialization", params)
    }

    /// Reports the result of check `check_name` on `asset_key` (`None` = the one asset in scope).
    ///
    /// # Errors
    /// [`Error::ContextAccess`] for an asset not in scope, [`Error::Closed`], I/O errors.
    pub fn report_asset_check(
        &self,
        asset_key: Option<&str>,
        check_name: &str,
        passed: bool,
        severity: CheckSeverity,
        metadata: Vec<(String, MetadataValue)>,
    ) -> Result<()> {
        let asset_key = self.context.resolve_asset_key(asset_key)?;
        let severity = match severity {
            CheckSeverity::Warn => "WARN",
            CheckSeverity::Error => "ERROR",
        };
        let params = json!({
            "asset_key": asset_key, "check_name": check_name, "passed": passed, "severity": severity,
            "metadata": metadata_map(metadata),
        });
        self.send("report_asset_check", params)
    }

    /// Sends any JSON payload (`invocation.get_custom_messages()` on the Dagster side).
    ///
    /// # Errors
    /// [`Error::Closed`], I/O errors.
    pub fn report_custom_message(&self, payload: Value) -> Result<()> {
        self.send("report_custom_message", json!({"payload": payload}))
    }

    /// Sends `closed` (with `exception` when the step failed) and flushes a buffered channel. Idempotent: only
    /// the first call, drop or panic sends it.
    ///
    /// # Errors
    /// I/O errors of the channel.
    pub fn close(&self, exception: Option<&PipesException>) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return Ok(());
        }
        state.closed = true;
        let params = match exception {
            Some(exception) => json!({"exception": exception}),
            None => json!({}),
        };
        let result = write_message(&mut state.channel, "closed", params);
        let flushed = flush_buffer(&mut state.channel);
        result.and(flushed)
    }

    /// Reports a panic anywhere in the process as this session's failure: the hook sends `closed` with the
    /// panic's message and location, then runs the hook that was installed before.
    pub fn install_panic_hook(self: &Arc<Self>) {
        let session: Weak<PipesSession> = Arc::downgrade(self);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(session) = session.upgrade() {
                let payload = info.payload();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                let stack = info.location().map(|l| vec![format!("at {}:{}:{}", l.file(), l.line(), l.column())]);
                let exception = PipesException {
                    message,
                    stack: stack.unwrap_or_default(),
                    name: Some("panic".to_owned()),
                    cause: None,
                    context: None,
                };
                let _ = session.close(Some(&exception));
            }
            previous(info);
        }));
    }

    fn send(&self, method: &str, params: Value) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return Err(Error::Closed { method: method.to_owned() });
        }
        write_message(&mut state.channel, method, params)
    }
}

impl Drop for PipesSession {
    fn drop(&mut self) {
        let _ = self.close(None);
    }
}

fn metadata_map(metadata: Vec<(String, MetadataValue)>) -> Value {
    if metadata.is_empty() {
        return Value::Null;
    }
    Value::Object(metadata.into_iter().map(|(k, v)| (k, v.to_json())).collect::<Map<String, Value>>())
}

/// The line of one message: the envelope with exactly these three keys, and a newline.
pub fn message_line(method: &str, params: &Value) -> Vec<u8> {
    let message = json!({"__dagster_pipes_version": PROTOCOL_VERSION, "method": method, "params": params});
    let mut line = serde_json::to_vec(&message).expect("messages serialise");
    line.push(b'\n');
    line
}

fn write_message(channel: &mut Channel, method: &str, params: Value) -> Result<()> {
    let line = message_line(method, &params);
    match channel {
        // One write of the whole line: a reader never sees half a message from us.
        Channel::File { file, path } => file.write_all(&line).map_err(|e| Error::io("write to", path.clone(), e)),
        Channel::Stdout => std::io::stdout().lock().write_all(&line).map_err(|e| Error::io("write to", "stdout", e)),
        Channel::Stderr => std::io::stderr().lock().write_all(&line).map_err(|e| Error::io("write to", "stderr", e)),
        Channel::Buffered { buffer, .. } => {
            buffer.extend_from_slice(&line);
            Ok(())
        }
    }
}

fn flush_buffer(channel: &mut Channel) -> Result<()> {
    if let Channel::Buffered { to_stderr, buffer } = channel {
        let bytes = std::mem::take(buffer);
        if *to_stderr {
            std::io::stderr().lock().write_all(&bytes).map_err(|e| Error::io("write to", "stderr", e))?;
        } else {
            std::io::stdout().lock().write_all(&bytes).map_err(|e| Error::io("write to", "stdout", e))?;
        }
    }
    Ok(())
}

fn load_context(params: &Value) -> Result<PipesContext> {
    // `path` wins when both are present, as in PipesDefaultContextLoader.
    if let Some(path) = params.get("path").and_then(Value::as_str) {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read the Pipes context", path, e))?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::InvalidContext { reason: format!("{path} is not JSON: {e}") })?;
        return PipesContext::from_json(value);
    }
    if let Some(data) = params.get("data") {
        return PipesContext::from_json(data.clone());
    }
    Err(Error::InvalidParam {
        name: CONTEXT_ENV.to_owned(),
        reason: format!("expected a \"path\" or \"data\" key, got {params}"),
    })
}

fn open_channel(params: &Value) -> Result<Channel> {
    let stream = |key: &str| params.get(key).and_then(Value::as_str);
    if let Some(path) = stream("path") {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io("open the Pipes messages file", path, e))?;
        return Ok(Channel::File { file, path: PathBuf::from(path) });
    }
    let invalid = |key: &str, value: &str| Error::InvalidParam {
        name: MESSAGES_ENV.to_owned(),
        reason: format!("{key} must be \"stdout\" or \"stderr\", not {value:?}"),
    };
    if let Some(which) = stream("stdio") {
        return match which {
            "stdout" => Ok(Channel::Stdout),
            "stderr" => Ok(Channel::Stderr),
            other => Err(invalid("stdio", other)),
        };
    }
    if let Some(which) = stream("buffered_stdio") {
        return match which {
            "stdout" | "stderr" => Ok(Channel::Buffered { to_stderr: which == "stderr", buffer: Vec::new() }),
            other => Err(invalid("buffered_stdio", other)),
        };
    }
    Err(Error::InvalidParam {
        name: MESSAGES_ENV.to_owned(),
        reason: format!("no supported message writer in {params} (expected \"path\", \"stdio\" or \"buffered_stdio\")"),
    })
}
