//! The bootstrap params: `base64(zlib(json))`, from the environment or the command line.

use std::io::{Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use crate::error::{Error, Result};

/// The env var holding the context injector's params.
pub const CONTEXT_ENV: &str = "DAGSTER_PIPES_CONTEXT";
/// The env var holding the message reader's params.
pub const MESSAGES_ENV: &str = "DAGSTER_PIPES_MESSAGES";
/// The flag that can carry the context params instead.
pub const CONTEXT_FLAG: &str = "--dagster-pipes-context";
/// The flag that can carry the message params instead.
pub const MESSAGES_FLAG: &str = "--dagster-pipes-messages";

/// Decodes a param as Dagster encodes it: standard base64 of the zlib-compressed UTF-8 JSON.
///
/// ```
/// let encoded = dagster_bridge::pipes::encode_param(&serde_json::json!({"path": "/tmp/x"}));
/// assert!(encoded.starts_with("eJ"));
/// let decoded = dagster_bridge::pipes::decode_param("DAGSTER_PIPES_CONTEXT", &encoded)?;
/// assert_eq!(decoded["path"], "/tmp/x");
/// # Ok::<(), dagster_bridge::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidParam`] naming `name` and which layer failed.
pub fn decode_param(name: &str, encoded: &str) -> Result<Value> {
    let invalid = |reason: String| Error::InvalidParam { name: name.to_owned(), reason };
    let compressed = B64.decode(encoded.trim()).map_err(|e| invalid(format!("not standard base64: {e}")))?;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .read_to_end(&mut json)
        .map_err(|e| invalid(format!("not zlib data: {e}")))?;
    let value: Value = serde_json::from_slice(&json).map_err(|e| invalid(format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(invalid(format!("expected a JSON object, got {value}")));
    }
    Ok(value)
}

/// Encodes a param as Dagster does (for tests and for launching steps without Dagster).
pub fn encode_param(value: &Value) -> String {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(value.to_string().as_bytes()).expect("writing to memory");
    B64.encode(encoder.finish().expect("writing to memory"))
}

/// The two raw params: from the env vars, else from the flags in `args` (`--flag value` or `--flag=value`, as
/// Python's `parse_known_args` accepts them). `None` when neither is anywhere: not under Dagster.
pub(crate) fn raw_params(args: impl IntoIterator<Item = String>) -> Result<Option<(String, String)>> {
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (mut context, mut messages) =
        (from_env(CONTEXT_ENV).map(|v| (v, CONTEXT_ENV)), from_env(MESSAGES_ENV).map(|v| (v, MESSAGES_ENV)));
    if context.is_none() && messages.is_none() {
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            for (flag, slot) in [(CONTEXT_FLAG, &mut context), (MESSAGES_FLAG, &mut messages)] {
                if arg == flag {
                    *slot = args.next().map(|v| (v, flag));
                } else if let Some(value) = arg.strip_prefix(flag).and_then(|rest| rest.strip_prefix('=')) {
                    *slot = Some((value.to_owned(), flag));
                }
            }
        }
    }
    match (context, messages) {
        (None, None) => Ok(None),
        (Some((c, _)), Some((m, _))) => Ok(Some((c, m))),
        (Some((_, present)), None) => {
            let missing = if present == CONTEXT_ENV { MESSAGES_ENV } else { MESSAGES_FLAG };
            Err(Error::MissingParam { missing: missing.to_owned(), present: present.to_owned() })
        }
        (None, Some((_, present))) => {
            let missing = if present == MESSAGES_ENV { CONTEXT_ENV } else { CONTEXT_FLAG };
            Err(Error::MissingParam { missing: missing.to_owned(), present: present.to_owned() })
        }
    }
}
