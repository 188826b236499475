//! The JSON records the embedded store keeps on disk, and the public views built from them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The marker file that makes a directory an embedded store.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoreMarker {
    pub(crate) format: u32,
    pub(crate) created_at: String,
}

/// `collections/<name>/collection.json` (and a portfolio's `portfolio.json`).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct CollectionRecord {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) artifact_type: String,
    pub(crate) created_at: String,
    /// Absent in records written before collections could be described.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) tags: Vec<String>,
}

/// How long a version lives (W&B's artifact TTL).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ttl {
    /// The policy of its entity or team (W&B's default); the embedded store has none, so it does not expire.
    #[default]
    Inherit,
    /// It never expires, whatever the team's policy.
    None,
    /// It expires this many seconds after it was created.
    Seconds(u64),
}

impl Ttl {
    /// W&B's `ttlDurationSeconds`: the seconds, `-1` for inherit, `-2` for none.
    pub fn to_graphql(self) -> i64 {
        match self {
            Ttl::Inherit => -1,
            Ttl::None => -2,
            Ttl::Seconds(s) => i64::try_from(s).unwrap_or(i64::MAX),
        }
    }

    /// From W&B's `ttlDurationSeconds` (and `ttlIsInherited`, which wins).
    pub fn from_graphql(seconds: Option<i64>, inherited: bool) -> Self {
        match seconds {
            _ if inherited => Ttl::Inherit,
            Some(s) if s > 0 => Ttl::Seconds(s as u64),
            Some(-2) | Some(0) => Ttl::None,
            _ => Ttl::Inherit,
        }
    }
}

impl std::str::FromStr for Ttl {
    type Err = crate::Error;

    /// `inherit`, `none`, or a positive duration: seconds (`3600`) or a number with a unit, `s`, `m`, `h`, `d`
    /// or `w` (`90m`, `30d`).
    ///
    /// ```
    /// use wandb_store::Ttl;
    /// assert_eq!("30d".parse::<Ttl>()?, Ttl::Seconds(30 * 86_400));
    /// assert_eq!("inherit".parse::<Ttl>()?, Ttl::Inherit);
    /// assert!("0s".parse::<Ttl>().is_err());
    /// # Ok::<(), wandb_store::Error>(())
    /// ```
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || crate::Error::InvalidTtl { value: text.to_owned() };
        match text.trim().to_ascii_lowercase().as_str() {
            "inherit" => Ok(Ttl::Inherit),
            "none" | "never" => Ok(Ttl::None),
            trimmed => {
                let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
                let (number, unit) = trimmed.split_at(split);
                let unit_seconds: u64 = match unit.trim() {
                    "" | "s" => 1,
                    "m" => 60,
                    "h" => 3600,
                    "d" => 86_400,
                    "w" => 7 * 86_400,
                    _ => return Err(invalid()),
                };
                let seconds = number.parse::<u64>().ok().and_then(|n| n.checked_mul(unit_seconds));
                match seconds {
                    Some(s) if s > 0 && i64::try_from(s).is_ok() => Ok(Ttl::Seconds(s)),
                    _ => Err(invalid()),
                }
            }
        }
    }
}

impl std::fmt::Display for Ttl {
    /// `inherit`, `none`, or the seconds with the largest unit that divides them (`30d`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Ttl::Inherit => f.write_str("inherit"),
            Ttl::None => f.write_str("none"),
            Ttl::Seconds(s) => {
                let (n, unit) = [(7 * 86_400, "w"), (86_400, "d"), (3600, "h"), (60, "m")]
                    .into_iter()
                    .find(|(unit, _)| s % unit == 0)
                    .map_or((s, "s"), |(unit, name)| (s / unit, name));
                write!(f, "{n}{unit}")
            }
        }
    }
}

/// `collections/<name>/versions/<n>/version.json`.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    pub(crate) id: String,
    pub(crate) version_index: u64,
    pub(crate) digest: String,
    pub(crate) digest_algorithm: String,
    pub(crate) description: Option<String>,
    pub(crate) metadata: Map<String, Value>,
    pub(crate) size: u64,
    pub(crate) file_count: u64,
    pub(crate) created_at: String,
    pub(crate) created_by: Option<String>,
    /// Base64 MD5 of `manifest.json`, as the server records the manifest file's digest.
    pub(crate) manifest_digest: String,
    /// Tags of the version (absent in records written before tags existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) tags: Vec<String>,
    /// Its time to live (absent in records written before TTLs existed: inherited).
    #[serde(default, skip_serializing_if = "is_inherited")]
    pub(crate) ttl: Ttl,
}

fn is_inherited(ttl: &Ttl) -> bool {
    *ttl == Ttl::Inherit
}

/// `index/artifacts/<n>.json`: where the artifact with id `Artifact:<n>` lives.
#[derive(Serialize, Deserialize)]
pub(crate) struct IdIndexRecord {
    pub(crate) entity: String,
    pub(crate) project: String,
    pub(crate) name: String,
    /// `None` while the id is reserved but the version not yet committed.
    pub(crate) version_index: Option<u64>,
}

/// `portfolios/<name>/versions/<n>`: the version linked as member `n`.
#[derive(Serialize, Deserialize)]
pub(crate) struct MemberRecord {
    pub(crate) id: String,
    pub(crate) linked_at: String,
}

/// One artifact version, as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArtifactVersion {
    /// The store-wide id (`base64("Artifact:<n>")`, the shape W&B ids have).
    pub id: String,
    /// The entity.
    pub entity: String,
    /// The project.
    pub project: String,
    /// The collection name.
    pub name: String,
    /// The type.
    #[serde(rename = "type")]
    pub artifact_type: String,
    /// `N` of `vN`: the version's position in its collection, in log order from 0.
    pub version_index: u64,
    /// Aliases pointing at this version: `latest` for the newest, plus custom ones, sorted.
    pub aliases: Vec<String>,
    /// The artifact digest (lowercase hex).
    pub digest: String,
    /// `MANIFEST_MD5` or `MANIFEST_XXH128`.
    pub digest_algorithm: String,
    /// The description.
    pub description: Option<String>,
    /// The metadata object.
    pub metadata: Map<String, Value>,
    /// Total size of the entries in bytes.
    pub size: u64,
    /// Number of manifest entries.
    pub file_count: u64,
    /// When the version was logged (RFC 3339, UTC).
    pub created_at: String,
    /// The run that logged it, if any.
    pub created_by: Option<String>,
    /// Its tags, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// For a version seen through a portfolio (a link target): the source, `entity/project/name:vN`. Its id,
    /// digest and files are the source's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linked_from: Option<String>,
    /// Its time to live.
    #[serde(default, skip_serializing_if = "is_inherited")]
    pub ttl: Ttl,
}

impl ArtifactVersion {
    /// `vN`.
    pub fn version(&self) -> String {
        format!("v{}", self.version_index)
    }

    /// `name:vN`.
    pub fn qualified_name(&self) -> String {
        format!("{}:v{}", self.name, self.version_index)
    }
}

/// What kind of collection a name is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectionKind {
    /// An artifact sequence: the versions logged under the name.
    #[default]
    Sequence,
    /// A portfolio: versions of other collections linked into it (a registry collection is one).
    Portfolio,
}

/// A collection (all versions of one artifact name, or a portfolio of linked versions) with its newest version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Collection {
    /// The collection name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub artifact_type: String,
    /// A sequence or a portfolio.
    pub kind: CollectionKind,
    /// Its description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// How many versions it has.
    pub version_count: u64,
    /// The newest version.
    pub latest: ArtifactVersion,
}

/// An edge between a run and an artifact version: the version its id names (a version used through a portfolio
/// or registry collection is recorded as its source, as W&B records it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactEdge {
    /// The artifact id.
    pub id: String,
    /// `name:vN`.
    pub name: String,
    /// The artifact type.
    #[serde(rename = "type")]
    pub artifact_type: String,
    /// The entity of the version's project, which may not be the run's (absent in records written before edges
    /// carried it: the store's id index still says where the id lives).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// The version's project (absent in older records, like `entity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

impl ArtifactEdge {
    /// The edge to `version` as it is named (for a version seen through a portfolio, pass its source).
    pub fn of(version: &ArtifactVersion) -> Self {
        ArtifactEdge {
            id: version.id.clone(),
            name: version.qualified_name(),
            artifact_type: version.artifact_type.clone(),
            entity: Some(version.entity.clone()),
            project: Some(version.project.clone()),
        }
    }

    /// The version's project, when the edge records it.
    pub fn project_ref(&self) -> Option<crate::ProjectRef> {
        crate::ProjectRef::new(self.entity.as_deref()?, self.project.as_deref()?).ok()
    }
}

/// A run: one execution that logs and uses artifacts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run id (unique in its project).
    pub id: String,
    /// A display name.
    pub name: Option<String>,
    /// What kind of step the run is (`load-data`, `train`, …).
    pub job_type: Option<String>,
    /// Its tags, in the order given (records written before tags existed read as untagged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
    /// Artifact versions it used, in order of first use.
    pub inputs: Vec<ArtifactEdge>,
    /// Artifact versions it logged, in order of first logging.
    pub outputs: Vec<ArtifactEdge>,
}

/// Which runs produced and consumed an artifact version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lineage {
    /// The run that logged the version, if any (a run of the version's project).
    pub created_by: Option<RunRecord>,
    /// Runs of the version's project that used it, oldest first.
    pub used_by: Vec<RunRecord>,
    /// Runs of other projects that used it, with their project, as the store's index of uses records them.
    pub used_elsewhere: Vec<(crate::ProjectRef, RunRecord)>,
}

/// Where a store-wide artifact id lives now (after renames and moves): its project, collection, type and number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VersionLocation {
    /// The version's project.
    pub project: crate::ProjectRef,
    /// Its collection (a sequence: ids name source versions, never a portfolio's members).
    pub name: String,
    /// The collection's type.
    #[serde(rename = "type")]
    pub artifact_type: String,
    /// `N` of `vN`.
    pub version_index: u64,
}

impl VersionLocation {
    /// `name:vN`.
    pub fn qualified_name(&self) -> String {
        format!("{}:v{}", self.name, self.version_index)
    }
}
