//! OpenSSH ed25519 public keys, as a request carries them (the raw 32-byte
//! key, on-chain in `VmSpec::ssh_key`) and as `~/.ssh/id_ed25519.pub` and
//! `authorized_keys` write them (`ssh-ed25519 <base64> [comment]`).

use base64::{engine::general_purpose::STANDARD, Engine};

const KEY_TYPE: &[u8] = b"ssh-ed25519";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SshKeyError {
    #[error("not an ssh-ed25519 public key (expected `ssh-ed25519 AAAA... [comment]`)")]
    NotEd25519,
    #[error("the key is not valid base64")]
    Base64,
    #[error("the key's encoding is malformed")]
    Malformed,
}

/// The raw key of an OpenSSH `ssh-ed25519` public key line.
pub fn parse_public_key(line: &str) -> Result<[u8; 32], SshKeyError> {
    let mut fields = line.split_whitespace();
    if fields.next() != Some("ssh-ed25519") {
        return Err(SshKeyError::NotEd25519);
    }
    let blob = STANDARD
        .decode(fields.next().ok_or(SshKeyError::Malformed)?)
        .map_err(|_| SshKeyError::Base64)?;
    let mut rest = blob.as_slice();
    let mut string = || -> Result<&[u8], SshKeyError> {
        let len = rest.get(..4).ok_or(SshKeyError::Malformed)?;
        let len = u32::from_be_bytes(len.try_into().expect("four bytes")) as usize;
        let value = rest.get(4..4 + len).ok_or(SshKeyError::Malformed)?;
        rest = &rest[4 + len..];
        Ok(value)
    };
    if string()? != KEY_TYPE {
        return Err(SshKeyError::NotEd25519);
    }
    let key: [u8; 32] = string()?.try_into().map_err(|_| SshKeyError::Malformed)?;
    if !rest.is_empty() {
        return Err(SshKeyError::Malformed);
    }
    Ok(key)
}

/// The OpenSSH line for a raw ed25519 key (what goes in `authorized_keys`).
pub fn format_public_key(key: &[u8; 32]) -> String {
    let mut blob = Vec::with_capacity(4 + KEY_TYPE.len() + 4 + 32);
    blob.extend_from_slice(&(KEY_TYPE.len() as u32).to_be_bytes());
    blob.extend_from_slice(KEY_TYPE);
    blob.extend_from_slice(&32u32.to_be_bytes());
    blob.extend_from_slice(key);
    format!("ssh-ed25519 {}", STANDARD.encode(blob))
}

/// An unencrypted OpenSSH private key file (`openssh-key-v1`) for an
/// ed25519 key given by its 32-byte seed and public key: what `ssh -i`
/// reads. Tools use it to hand a freshly generated customer key to the
/// system `ssh`.
pub fn format_private_key(seed: &[u8; 32], public: &[u8; 32], comment: &str) -> String {
    fn string(out: &mut Vec<u8>, value: &[u8]) {
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
    }
    let mut public_blob = Vec::new();
    string(&mut public_blob, KEY_TYPE);
    string(&mut public_blob, public);
    let check = u32::from_be_bytes(public[..4].try_into().expect("four bytes"));
    let mut private = Vec::new();
    private.extend_from_slice(&check.to_be_bytes());
    private.extend_from_slice(&check.to_be_bytes());
    string(&mut private, KEY_TYPE);
    string(&mut private, public);
    let mut secret = seed.to_vec();
    secret.extend_from_slice(public);
    string(&mut private, &secret);
    string(&mut private, comment.as_bytes());
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }
    let mut body = b"openssh-key-v1\0".to_vec();
    string(&mut body, b"none");
    string(&mut body, b"none");
    string(&mut body, b"");
    body.extend_from_slice(&1u32.to_be_bytes());
    string(&mut body, &public_blob);
    string(&mut body, &private);
    let encoded = STANDARD.encode(body);
    let mut out = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for line in encoded.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
        out.push('\n');
    }
    out.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ssh-keygen -y` derives the public key from the private key file we
    /// write (skipped where OpenSSH is not installed). The key pair is RFC
    /// 8032's first test vector.
    #[test]
    fn ssh_keygen_reads_the_private_key_we_write() {
        if std::process::Command::new("ssh-keygen")
            .arg("-?")
            .output()
            .is_err()
        {
            eprintln!("ssh-keygen not installed; skipping");
            return;
        }
        let seed = hex32("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let public = hex32("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let dir = std::env::temp_dir().join(format!("dagger-ssh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("id_ed25519");
        std::fs::write(&path, format_private_key(&seed, &public, "dagger test")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let out = std::process::Command::new("ssh-keygen")
            .arg("-y")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let derived = String::from_utf8(out.stdout).unwrap();
        assert_eq!(parse_public_key(&derived), Ok(public));
    }

    fn hex32(text: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex::decode_to_slice(&text[..64], &mut out).unwrap();
        out
    }

    #[test]
    fn round_trips_and_refuses_other_keys() {
        let key = [7u8; 32];
        let line = format_public_key(&key);
        assert_eq!(parse_public_key(&line), Ok(key));
        assert_eq!(parse_public_key(&format!("{line} me@host\n")), Ok(key));
        // A real key written by ssh-keygen.
        let real =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMVFDXNMuM2NRPvJmgHOL3L+I+OaTN+3NkVGylfvV4b1 x@y";
        assert!(parse_public_key(real).is_ok());
        assert_eq!(
            parse_public_key("ssh-rsa AAAAB3NzaC1yc2E="),
            Err(SshKeyError::NotEd25519)
        );
        assert_eq!(
            parse_public_key("ssh-ed25519 !!!"),
            Err(SshKeyError::Base64)
        );
        assert_eq!(
            parse_public_key("ssh-ed25519 AAAA"),
            Err(SshKeyError::Malformed)
        );
        assert_eq!(parse_public_key(""), Err(SshKeyError::NotEd25519));
        // The type inside the blob must say ed25519 too.
        let mut blob = Vec::new();
        blob.extend_from_slice(&7u32.to_be_bytes());
        blob.extend_from_slice(b"ssh-rsa");
        let line = format!("ssh-ed25519 {}", STANDARD.encode(blob));
        assert_eq!(parse_public_key(&line), Err(SshKeyError::NotEd25519));
    }
}
