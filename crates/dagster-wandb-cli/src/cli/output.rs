//! What the commands print: one JSON object with `--json`, short human lines otherwise.

use std::io::Write;

use serde::Serialize;
use serde_json::value::RawValue;

use super::{CliError, CliResult};

/// The `--json` object of `artifact put` and `artifact get`.
#[derive(Serialize)]
pub(crate) struct ArtifactJson<'a> {
    pub(crate) name: &'a str,
    #[serde(rename = "type")]
    pub(crate) artifact_type: &'a str,
    /// Absent with `--dry-run`: nothing was logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) version: Option<String>,
    pub(crate) digest: &'a str,
    pub(crate) size: u64,
    pub(crate) file_count: u64,
    pub(crate) entity: &'a str,
    pub(crate) project: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) aliases: Option<&'a [String]>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub(crate) tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<&'a serde_json::Map<String, serde_json::Value>>,
    /// Absent with `--dry-run`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ttl: Option<wandb_api::Ttl>,
    /// `put`: false when identical content made no new version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) created: Option<bool>,
    /// `get`: where the files are and how they got there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) download: Option<&'a wandb_api::DownloadReport>,
    /// `get --checkout`: the files removed because the version does not have them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) removed: Option<&'a [String]>,
    /// The manifest in the Go dialect wandb-core uploads, embedded verbatim.
    pub(crate) manifest: Box<RawValue>,
}

impl<'a> ArtifactJson<'a> {
    /// The object for a logged version and its manifest.
    pub(crate) fn for_version(
        version: &'a wandb_api::ArtifactVersion,
        manifest: &artifact_core::Manifest,
    ) -> CliResult<Self> {
        Ok(ArtifactJson {
            name: &version.name,
            artifact_type: &version.artifact_type,
            version: Some(version.version()),
            digest: &version.digest,
            size: version.size,
            file_count: version.file_count,
            entity: &version.entity,
            project: &version.project,
            aliases: Some(&version.aliases),
            tags: &version.tags,
            description: version.description.as_deref(),
            metadata: Some(&version.metadata),
            ttl: Some(version.ttl),
            created: None,
            download: None,
            removed: None,
            manifest: raw_manifest(manifest.to_go_json())?,
        })
    }
}

/// Embeds manifest bytes (valid JSON by construction) verbatim.
pub(crate) fn raw_manifest(bytes: Vec<u8>) -> CliResult<Box<RawValue>> {
    let text = String::from_utf8(bytes).map_err(|e| CliError::Usage(format!("manifest is not UTF-8: {e}")))?;
    RawValue::from_string(text).map_err(|e| CliError::Usage(format!("manifest is not JSON: {e}")))
}

/// Prints one JSON value and a newline on stdout.
pub(crate) fn print_json(value: &impl Serialize) -> CliResult {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value).map_err(|e| CliError::Output(e.into()))?;
    writeln!(stdout).map_err(CliError::Output)
}

/// Prints a line on stdout.
pub(crate) fn print_line(line: &str) -> CliResult {
    writeln!(std::io::stdout().lock(), "{line}").map_err(CliError::Output)
}

/// Prints a notice on stderr.
pub(crate) fn notice(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `1.5 KiB`-style sizes.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes() {
        assert_eq!(human_size(330), "330 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(512 << 20), "512.0 MiB");
    }
}
