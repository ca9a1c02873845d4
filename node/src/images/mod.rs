//! VM images, named by content hash.
//!
//! An image is a Linux kernel and an initramfs plus the kernel arguments it
//! needs, described by a manifest; its id is the blake3 hash of that
//! manifest, which names the two files by their own blake3 hashes. A
//! request names the image it wants by id (`VmSpec::image_id`); operators
//! keep a catalog directory of images they serve and announce their ids
//! through consensus, so a request is only assigned to an operator that has
//! its image.
//!
//! Catalog layout: `<dir>/<hex id>/{manifest.json, kernel, initrd}`.

mod cpio;
mod debian;
mod default;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use debian::{build_debian, host_mirror, host_suite, DebianImageOptions};
pub use default::{build_default, DefaultImageSources, DEFAULT_KERNEL_DIR};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("image {0} is not in the catalog")]
    Unknown(String),
    #[error("image {id}: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("cannot build the image: {0}")]
    Build(String),
    #[error("`{0}` names more than one image; use its id")]
    Ambiguous(String),
}

fn io(path: &Path, e: impl std::fmt::Display) -> ImageError {
    ImageError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// A file of an image and its content hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFile {
    pub file: String,
    pub blake3: String,
}

/// What an image is. Its canonical JSON is what the id hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub arch: String,
    pub kernel: ImageFile,
    pub initrd: ImageFile,
    /// Kernel arguments the image needs (the provisioner adds console and
    /// clock settings of its own).
    pub cmdline: String,
    /// A raw root file system, for images that boot from a disk: each VM
    /// gets a copy-on-write layer over it as its `/dev/vda`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<ImageFile>,
}

impl Manifest {
    pub fn id(&self) -> [u8; 32] {
        let canonical = serde_json::to_vec(self).expect("plain data serialises");
        *blake3::hash(&canonical).as_bytes()
    }
}

/// An image in a catalog.
#[derive(Clone, Debug)]
pub struct Image {
    pub id: [u8; 32],
    pub manifest: Manifest,
    pub dir: PathBuf,
}

impl Image {
    pub fn kernel(&self) -> PathBuf {
        self.dir.join(&self.manifest.kernel.file)
    }
    pub fn initrd(&self) -> PathBuf {
        self.dir.join(&self.manifest.initrd.file)
    }
    pub fn rootfs(&self) -> Option<PathBuf> {
        self.manifest
            .rootfs
            .as_ref()
            .map(|f| self.dir.join(&f.file))
    }
}

pub use crate::core::hex;

fn hash_file(path: &Path) -> Result<String, ImageError> {
    let file = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(file).map_err(|e| io(path, e))?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// A directory of images.
#[derive(Clone, Debug)]
pub struct Catalog {
    dir: PathBuf,
}

impl Catalog {
    pub fn new(dir: impl Into<PathBuf>) -> Catalog {
        Catalog { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every image whose manifest reads back to the id it is filed under.
    /// Files are checked against their hashes when an image is used
    /// ([`Catalog::get`]), not here.
    pub fn list(&self) -> Vec<Image> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<Image> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                self.read(&name).ok()
            })
            .collect();
        out.sort_by_key(|image| image.id);
        out
    }

    fn read(&self, hex_id: &str) -> Result<Image, ImageError> {
        let dir = self.dir.join(hex_id);
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| ImageError::Corrupt {
            id: hex_id.to_string(),
            reason: e.to_string(),
        })?;
        let id = manifest.id();
        if hex(&id) != hex_id {
            return Err(ImageError::Corrupt {
                id: hex_id.to_string(),
                reason: "the manifest does not hash to the id it is filed under".into(),
            });
        }
        Ok(Image { id, manifest, dir })
    }

    /// The image with this id, its files checked against the manifest (a
    /// file already checked is checked again once its size or time of
    /// change differs).
    pub fn get(&self, id: &[u8; 32]) -> Result<Image, ImageError> {
        let image = self.read(&hex(id)).map_err(|e| match e {
            ImageError::Io { .. } => ImageError::Unknown(hex(id)),
            other => other,
        })?;
        let files = [Some(&image.manifest.kernel), Some(&image.manifest.initrd)];
        for file in files
            .into_iter()
            .chain([image.manifest.rootfs.as_ref()])
            .flatten()
        {
            let path = image.dir.join(&file.file);
            if !file_matches(&path, &file.blake3)? {
                return Err(ImageError::Corrupt {
                    id: hex(id),
                    reason: format!("{} does not match its hash", file.file),
                });
            }
        }
        Ok(image)
    }

    /// Adds an image made of these files (copied into the catalog).
    pub fn add(
        &self,
        name: &str,
        kernel: &Path,
        initrd: &Path,
        rootfs: Option<&Path>,
        cmdline: &str,
    ) -> Result<Image, ImageError> {
        let staging = self.staging()?;
        let copy = |from: &Path, to: &str| {
            std::fs::copy(from, staging.path().join(to)).map_err(|e| io(from, e))
        };
        copy(kernel, "kernel")?;
        copy(initrd, "initrd")?;
        if let Some(rootfs) = rootfs {
            copy(rootfs, "rootfs")?;
        }
        self.install(name, staging, cmdline)
    }

    pub(crate) fn add_bytes(
        &self,
        name: &str,
        kernel: &[u8],
        initrd: &[u8],
        cmdline: &str,
    ) -> Result<Image, ImageError> {
        let staging = self.staging()?;
        for (file, bytes) in [("kernel", kernel), ("initrd", initrd)] {
            let path = staging.path().join(file);
            std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
        }
        self.install(name, staging, cmdline)
    }

    /// A directory inside the catalog to assemble an image in (removed
    /// unless installed): `kernel`, `initrd` and optionally `rootfs`.
    pub(crate) fn staging(&self) -> Result<tempfile::TempDir, ImageError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(&self.dir)
            .map_err(|e| io(&self.dir, e))
    }

    /// Hashes the staged files, writes the manifest and files the image
    /// under its id (renamed into place: a half-written image is never
    /// listed).
    pub(crate) fn install(
        &self,
        name: &str,
        staging: tempfile::TempDir,
        cmdline: &str,
    ) -> Result<Image, ImageError> {
        let entry = |file: &str| -> Result<ImageFile, ImageError> {
            Ok(ImageFile {
                file: file.into(),
                blake3: hash_file(&staging.path().join(file))?,
            })
        };
        let rootfs = if staging.path().join("rootfs").exists() {
            Some(entry("rootfs")?)
        } else {
            None
        };
        let manifest = Manifest {
            name: name.to_string(),
            arch: "x86_64".into(),
            kernel: entry("kernel")?,
            initrd: entry("initrd")?,
            cmdline: cmdline.to_string(),
            rootfs,
        };
        let id = manifest.id();
        let path = staging.path().join("manifest.json");
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&manifest).expect("plain data serialises"),
        )
        .map_err(|e| io(&path, e))?;
        let dir = self.dir.join(hex(&id));
        if !dir.exists() {
            let staged = staging.keep();
            std::fs::rename(&staged, &dir).map_err(|e| io(&dir, e))?;
            for file in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))?.flatten() {
                // Readable by the account QEMU runs as; written by nobody.
                use std::os::unix::fs::PermissionsExt;
                let _ =
                    std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o444));
            }
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
        }
        Ok(Image { id, manifest, dir })
    }

    /// Finds an image by id (hex, or a unique prefix of at least 8
    /// digits) or by name (exact, or its first word, e.g. `debian` for
    /// `debian (bookworm, ...)`); a name that fits several images is an
    /// error.
    pub fn find(&self, wanted: &str) -> Result<Image, ImageError> {
        let images = self.list();
        let wanted_lower = wanted.to_ascii_lowercase();
        let by_id: Vec<&Image> =
            if wanted.len() >= 8 && wanted.chars().all(|c| c.is_ascii_hexdigit()) {
                images
                    .iter()
                    .filter(|i| hex(&i.id).starts_with(&wanted_lower))
                    .collect()
            } else {
                Vec::new()
            };
        let by_name: Vec<&Image> = images
            .iter()
            .filter(|i| dagger_client::images::answers_to(&i.manifest.name, wanted))
            .collect();
        match (by_id.as_slice(), by_name.as_slice()) {
            ([one], _) | ([], [one]) => Ok((*one).clone()),
            ([], []) => Err(ImageError::Unknown(wanted.to_string())),
            _ => Err(ImageError::Ambiguous(wanted.to_string())),
        }
    }
}

/// Whether the file at `path` hashes to `expected`; remembered per file
/// size and time of change, so a large root file system is hashed once.
fn file_matches(path: &Path, expected: &str) -> Result<bool, ImageError> {
    use std::os::unix::fs::MetadataExt;
    use std::{collections::HashMap, sync::Mutex};
    /// Per file: size and status-change stamp (inode, ctime: unlike the
    /// modification time, not settable by the file's owner), hash.
    type Checked = HashMap<PathBuf, (u64, (u64, i64, i64), String)>;
    static CHECKED: Mutex<Option<Checked>> = Mutex::new(None);
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    let stamp = (meta.len(), (meta.ino(), meta.ctime(), meta.ctime_nsec()));
    let known = CHECKED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .get(path)
        .filter(|(len, time, _)| (*len, *time) == stamp)
        .map(|(_, _, hash)| hash.clone());
    let hash = match known {
        Some(hash) => hash,
        None => {
            let hash = hash_file(path)?;
            CHECKED
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(HashMap::new)
                .insert(path.to_path_buf(), (stamp.0, stamp.1, hash.clone()));
            hash
        }
    };
    Ok(hash == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_named_by_content_and_checked_when_used() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::new(dir.path());
        let image = catalog
            .add_bytes("test", b"kernel bytes", b"initrd bytes", "quiet")
            .unwrap();
        assert_eq!(catalog.list().len(), 1);
        assert_eq!(catalog.get(&image.id).unwrap().manifest, image.manifest);
        // Same content, same id; other content, another id.
        let again = catalog
            .add_bytes("test", b"kernel bytes", b"initrd bytes", "quiet")
            .unwrap();
        assert_eq!(again.id, image.id);
        let other = catalog
            .add_bytes("test", b"kernel bytes", b"initrd bytes", "")
            .unwrap();
        assert_ne!(other.id, image.id);
        assert_eq!(catalog.list().len(), 2);
        // Unknown ids and tampered files are refused.
        assert!(matches!(catalog.get(&[9; 32]), Err(ImageError::Unknown(_))));
        std::fs::write(image.initrd(), b"evil").unwrap();
        assert!(matches!(
            catalog.get(&image.id),
            Err(ImageError::Corrupt { .. })
        ));
        // A manifest filed under the wrong id is not listed.
        std::fs::rename(image.dir.clone(), dir.path().join(hex(&[1; 32]))).unwrap();
        assert_eq!(catalog.list().len(), 1);
    }
}
