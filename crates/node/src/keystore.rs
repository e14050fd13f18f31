//! Account keys on disk: `HOME/keys/NAME.json`, one ed25519 key per named account.
//!
//! Files are written with mode 0600 on Unix. Names are short identifiers (letters, digits, `-`,
//! `_`), so a name can never escape the keys directory.

use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::{Signer, ed25519};
use serde::{Deserialize, Serialize};
use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};
use tributary_types::{Address, limits};

/// Errors of the keystore.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// The name is not a valid key name.
    #[error("`{0}` is not a valid key name: use 1 to {max} letters, digits, `-` or `_`", max = limits::KEY_NAME_BYTES_MAX)]
    InvalidName(String),
    /// No key with that name.
    #[error("no key named `{name}` in {dir}; create one with `tributary keys new {name}`")]
    NotFound {
        /// The name.
        name: String,
        /// The keys directory.
        dir: String,
    },
    /// A key with that name exists already.
    #[error("a key named `{0}` already exists")]
    Exists(String),
    /// The key file is damaged.
    #[error("key file {path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// A key file's contents.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyFile {
    /// The key's name.
    pub name: String,
    /// The account address.
    pub address: Address,
    /// The ed25519 private key, hex.
    pub private_key: String,
}

/// A loaded key.
#[derive(Clone)]
pub struct Key {
    /// The key's name.
    pub name: String,
    /// The signing key.
    pub signer: ed25519::PrivateKey,
}

impl Key {
    /// The account address.
    pub fn address(&self) -> Address {
        Address::from_public_key(&self.signer.public_key())
    }
}

/// The keys directory of a home.
pub struct Keystore {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeystoreError + '_ {
    move |source| KeystoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn validate_name(name: &str) -> Result<(), KeystoreError> {
    let valid = !name.is_empty()
        && name.len() <= limits::KEY_NAME_BYTES_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(KeystoreError::InvalidName(name.to_string()))
    }
}

impl Keystore {
    /// The keystore under `home`.
    pub fn new(home: &Path) -> Self {
        Self {
            dir: home.join("keys"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Stores `signer` under `name`; refuses to overwrite.
    pub fn insert(&self, name: &str, signer: &ed25519::PrivateKey) -> Result<Key, KeystoreError> {
        validate_name(name)?;
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.path(name);
        if path.exists() {
            return Err(KeystoreError::Exists(name.to_string()));
        }
        let file = KeyFile {
            name: name.to_string(),
            address: Address::from_public_key(&signer.public_key()),
            private_key: hex::encode(signer.encode()),
        };
        let text = serde_json::to_string_pretty(&file).map_err(|error| KeystoreError::Damaged {
            path: path.display().to_string(),
            reason: error.to_string(),
        })?;
        write_private(&path, text.as_bytes())?;
        Ok(Key {
            name: name.to_string(),
            signer: signer.clone(),
        })
    }

    /// Creates a fresh random key under `name`.
    pub fn create(&self, name: &str) -> Result<Key, KeystoreError> {
        let signer = tributary_chain::genesis::new_validator_key();
        self.insert(name, &signer)
    }

    /// Loads the key `name`.
    pub fn load(&self, name: &str) -> Result<Key, KeystoreError> {
        validate_name(name)?;
        let path = self.path(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeystoreError::NotFound {
                    name: name.to_string(),
                    dir: self.dir.display().to_string(),
                });
            }
            Err(error) => return Err(io(&path)(error)),
        };
        let damaged = |reason: String| KeystoreError::Damaged {
            path: path.display().to_string(),
            reason,
        };
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| damaged(e.to_string()))?;
        let bytes = hex::decode(&file.private_key).map_err(|e| damaged(e.to_string()))?;
        let signer = ed25519::PrivateKey::decode(bytes).map_err(|e| damaged(e.to_string()))?;
        if Address::from_public_key(&signer.public_key()) != file.address {
            return Err(damaged("the address does not match the private key".into()));
        }
        Ok(Key {
            name: file.name,
            signer,
        })
    }

    /// Every key, by name.
    pub fn list(&self) -> Result<Vec<Key>, KeystoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io(&self.dir)(error)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().to_string();
                name.strip_suffix(".json").map(str::to_string)
            })
            .collect();
        names.sort();
        names.iter().map(|name| self.load(name)).collect()
    }
}

/// Writes a file readable only by its owner.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeystoreError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_load_list_and_refuse_bad_names() {
        let home = tempfile::tempdir().unwrap();
        let store = Keystore::new(home.path());
        let alice = store.create("alice").unwrap();
        assert_eq!(store.load("alice").unwrap().address(), alice.address());
        assert!(matches!(
            store.create("alice"),
            Err(KeystoreError::Exists(_))
        ));
        assert!(matches!(
            store.load("../etc"),
            Err(KeystoreError::InvalidName(_))
        ));
        assert!(matches!(
            store.load("bob"),
            Err(KeystoreError::NotFound { .. })
        ));
        assert_eq!(store.list().unwrap().len(), 1);
    }
}
