//! The node's one ed25519 identity, stored as a Solana CLI keypair file (a
//! JSON array of 64 bytes: secret key then public key), so the same file is
//! usable with `solana` tools and is the key registered on-chain as the
//! operator's node key.

use std::{fs, io::Write, path::Path};

use ed25519_dalek::{SigningKey, VerifyingKey};

/// A node identity public key (the raw 32 ed25519 bytes).
pub type NodeId = [u8; 32];

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read keypair file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write keypair file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("keypair file {path} is not a JSON array of 64 bytes")]
    Format { path: String },
    #[error("keypair file {path}: the public half does not match the secret half")]
    Mismatch { path: String },
    #[error("refusing to overwrite existing keypair file {path}")]
    Exists { path: String },
}

/// The node's signing identity.
#[derive(Clone)]
pub struct Identity {
    signing: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("public", &display_id(&self.id()))
            .finish()
    }
}

impl Identity {
    pub fn generate() -> Identity {
        Identity {
            signing: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    pub fn from_signing_key(signing: SigningKey) -> Identity {
        Identity { signing }
    }

    /// Reads a Solana CLI keypair file.
    pub fn load(path: &Path) -> Result<Identity, IdentityError> {
        let display = path.display().to_string();
        let text = fs::read_to_string(path).map_err(|source| IdentityError::Read {
            path: display.clone(),
            source,
        })?;
        Self::from_json(&text).map_err(|err| match err {
            IdentityError::Format { .. } => IdentityError::Format { path: display },
            IdentityError::Mismatch { .. } => IdentityError::Mismatch { path: display },
            other => other,
        })
    }

    /// Parses the Solana CLI keypair JSON format.
    pub fn from_json(text: &str) -> Result<Identity, IdentityError> {
        let format = || IdentityError::Format {
            path: String::new(),
        };
        let bytes: Vec<u8> = serde_json::from_str(text).map_err(|_| format())?;
        let bytes: [u8; 64] = bytes.try_into().map_err(|_| format())?;
        let signing =
            SigningKey::from_keypair_bytes(&bytes).map_err(|_| IdentityError::Mismatch {
                path: String::new(),
            })?;
        Ok(Identity { signing })
    }

    /// The Solana CLI keypair JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.signing.to_keypair_bytes().to_vec())
            .expect("a byte vector always serialises")
    }

    /// Writes a new keypair file (mode 0600), and beside it a signing record
    /// saying the key never signed (`crate::signing_record`); never
    /// overwrites either.
    pub fn save_new(&self, path: &Path) -> Result<(), IdentityError> {
        let display = path.display().to_string();
        if path.exists() {
            return Err(IdentityError::Exists { path: display });
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|source| IdentityError::Write {
                path: display.clone(),
                source,
            })?;
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|source| IdentityError::Write {
            path: display.clone(),
            source,
        })?;
        file.write_all(self.to_json().as_bytes())
            .map_err(|source| IdentityError::Write {
                path: display.clone(),
                source,
            })?;
        let record = crate::signing_record::default_path(path);
        if !record.exists() {
            crate::signing_record::SigningRecord::create_fresh(&record, &display_id(&self.id()))
                .map_err(|e| IdentityError::Write {
                    path: record.display().to_string(),
                    source: std::io::Error::other(e.to_string()),
                })?;
        }
        Ok(())
    }

    pub fn id(&self) -> NodeId {
        self.signing.verifying_key().to_bytes()
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
}

/// A node id as Solana tools print keys (base58).
pub fn display_id(id: &NodeId) -> String {
    bs58::encode(id).into_string()
}

/// Parses a base58 node id.
pub fn parse_id(text: &str) -> Option<NodeId> {
    bs58::decode(text).into_vec().ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_solana_cli_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.json");
        let identity = Identity::generate();
        identity.save_new(&path).unwrap();
        let loaded = Identity::load(&path).unwrap();
        assert_eq!(loaded.id(), identity.id());
        // 64 numbers, secret first then public.
        let numbers: Vec<u8> = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(numbers.len(), 64);
        assert_eq!(&numbers[32..], &identity.id());
        assert!(matches!(
            identity.save_new(&path),
            Err(IdentityError::Exists { .. })
        ));
    }

    #[test]
    fn rejects_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        for text in ["", "[1,2,3]", "{\"a\":1}", &format!("{:?}", vec![300; 64])] {
            fs::write(&path, text).unwrap();
            assert!(matches!(
                Identity::load(&path),
                Err(IdentityError::Format { .. })
            ));
        }
        let mut bytes = Identity::generate().signing_key().to_keypair_bytes();
        bytes[40] ^= 1;
        fs::write(&path, serde_json::to_string(&bytes.to_vec()).unwrap()).unwrap();
        assert!(matches!(
            Identity::load(&path),
            Err(IdentityError::Mismatch { .. })
        ));
        assert!(matches!(
            Identity::load(&dir.path().join("missing.json")),
            Err(IdentityError::Read { .. })
        ));
    }
}
