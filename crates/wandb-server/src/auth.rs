//! Who may use the server: users with API keys, each allowed a list of entities.
//!
//! A users file is JSON: `{"users": [{"name": "alice", "api_key": "<40+ chars>", "entities": ["alice", "ml-team"],
//! "admin": false}]}`, or `"api_key_hash": "blake3:<hex>"` instead of the key ([`hash_api_key`] prints it). Keys
//! are kept only as BLAKE3 hashes and compared in constant time. An admin may use every entity.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The users of a server.
#[derive(Clone, Debug)]
pub struct Users {
    users: Vec<User>,
}

/// One user.
#[derive(Clone, Debug)]
struct User {
    name: String,
    key_hash: blake3::Hash,
    entities: HashSet<String>,
    /// The entity the viewer query reports first: the user's own.
    home: String,
    admin: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    users: Vec<UserEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: String,
    api_key: Option<String>,
    api_key_hash: Option<String>,
    #[serde(default)]
    entities: Vec<String>,
    #[serde(default)]
    admin: bool,
}

/// The shortest API key accepted (the real client refuses shorter ones too).
pub const MIN_API_KEY_LEN: usize = 40;

/// `blake3:<hex>`, the form a users file keeps a key in.
///
/// ```
/// let hash = wandb_server::hash_api_key("0123456789abcdef0123456789abcdef01234567");
/// assert!(hash.starts_with("blake3:") && hash.len() == 7 + 64);
/// ```
pub fn hash_api_key(key: &str) -> String {
    format!("blake3:{}", blake3::hash(key.as_bytes()).to_hex())
}

impl Users {
    /// Reads a users file.
    ///
    /// # Errors
    /// [`Error::Users`] naming the file and what is wrong with it.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Users { source_name: path.display().to_string(), reason: e.to_string() })?;
        Self::from_json(&text).map_err(|e| match e {
            Error::Users { reason, .. } => Error::Users { source_name: path.display().to_string(), reason },
            other => other,
        })
    }

    /// Parses a users file's text.
    ///
    /// ```
    /// let users = wandb_server::Users::from_json(r#"{"users": [{"name": "alice",
    ///     "api_key": "0123456789abcdef0123456789abcdef01234567", "entities": ["alice", "ml-team"]}]}"#)?;
    /// assert_eq!(users.len(), 1);
    /// # Ok::<(), wandb_server::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Users`]: not JSON of that shape, a key shorter than 40 characters, a hash that is not
    /// `blake3:<64 hex digits>`, both or neither of `api_key` and `api_key_hash`, an invalid entity name, no
    /// entity for a user who is not an admin, two users with one name or one key.
    pub fn from_json(text: &str) -> Result<Self> {
        let invalid = |reason: String| Error::Users { source_name: "the users file".to_owned(), reason };
        let file: UsersFile = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut users = Vec::new();
        for entry in file.users {
            let name = &entry.name;
            let key_hash = match (&entry.api_key, &entry.api_key_hash) {
                (Some(key), None) if key.chars().count() >= MIN_API_KEY_LEN => blake3::hash(key.as_bytes()),
                (Some(_), None) => {
                    return Err(invalid(format!("user {name:?}: api_key must have {MIN_API_KEY_LEN}+ characters")));
                }
                (None, Some(hash)) => parse_hash(hash).ok_or_else(|| {
                    invalid(format!("user {name:?}: api_key_hash {hash:?} is not blake3:<64 hex digits>"))
                })?,
                _ => return Err(invalid(format!("user {name:?}: give exactly one of api_key and api_key_hash"))),
            };
            for entity in &entry.entities {
                artifact_core::validate_entity_name(entity)
                    .map_err(|e| invalid(format!("user {name:?}: entity {entity:?}: {e}")))?;
            }
            if entry.entities.is_empty() && !entry.admin {
                return Err(invalid(format!("user {name:?} may use no entity; list some, or make them an admin")));
            }
            if users.iter().any(|u: &User| u.name == *name) {
                return Err(invalid(format!("two users are named {name:?}")));
            }
            if users.iter().any(|u: &User| u.key_hash == key_hash) {
                return Err(invalid(format!("user {name:?} has another user's key")));
            }
            users.push(User {
                name: name.clone(),
                key_hash,
                home: entry.entities.first().cloned().unwrap_or_else(|| name.clone()),
                entities: entry.entities.into_iter().collect(),
                admin: entry.admin,
            });
        }
        if users.is_empty() {
            return Err(invalid("it lists no users".to_owned()));
        }
        Ok(Users { users })
    }

    /// One admin user holding `key` (`--api-key`): every entity, as before users existed.
    pub fn single(key: &str, entity: &str) -> Self {
        Users {
            users: vec![User {
                name: entity.to_owned(),
                key_hash: blake3::hash(key.as_bytes()),
                entities: HashSet::new(),
                home: entity.to_owned(),
                admin: true,
            }],
        }
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are none (never, for a loaded file).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The caller holding `key`, if it is a user's.
    pub(crate) fn authenticate(&self, key: &str) -> Option<Caller> {
        let hash = blake3::hash(key.as_bytes());
        // blake3::Hash compares in constant time.
        let user = self.users.iter().find(|u| u.key_hash == hash)?;
        let mut teams: Vec<String> = user.entities.iter().filter(|e| **e != user.home).cloned().collect();
        teams.sort();
        Some(Caller {
            name: user.name.clone(),
            home: user.home.clone(),
            teams,
            entities: (!user.admin).then(|| user.entities.clone()),
        })
    }
}

fn parse_hash(text: &str) -> Option<blake3::Hash> {
    blake3::Hash::from_hex(text.strip_prefix("blake3:")?).ok()
}

/// Who is asking.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    /// The user's name.
    pub(crate) name: String,
    /// Their own entity, which the viewer query reports.
    pub(crate) home: String,
    /// Their other entities, the viewer's teams.
    pub(crate) teams: Vec<String>,
    /// The entities they may use; `None` for every one (an admin, or a server without users).
    entities: Option<HashSet<String>>,
}

impl Caller {
    /// Anyone, on a server without users.
    pub(crate) fn anyone(default_entity: &str) -> Self {
        Caller { name: default_entity.to_owned(), home: default_entity.to_owned(), teams: Vec::new(), entities: None }
    }

    /// Whether they may use only some entities.
    pub(crate) fn is_restricted(&self) -> bool {
        self.entities.is_some()
    }

    /// The entities they may use; `None` for every one.
    pub(crate) fn entities(&self) -> Option<&HashSet<String>> {
        self.entities.as_ref()
    }

    /// Whether they may read and write `entity`.
    pub(crate) fn may_use(&self, entity: &str) -> bool {
        self.entities.as_ref().is_none_or(|allowed| allowed.contains(entity))
    }
}
