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
mod default;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use default::{build_default, DefaultImageSources, DEFAULT_KERNEL_DIR};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("image {0} is not in the catalog")]
    Unknown(String),
    #[error("image {id}: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("cannot build the default image: {0}")]
    Build(String),
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
}

pub use crate::core::hex;

fn hash_file(path: &Path) -> Result<String, ImageError> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    Ok(blake3::hash(&bytes).to_hex().to_string())
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

    /// The image with this id, its files checked against the manifest.
    pub fn get(&self, id: &[u8; 32]) -> Result<Image, ImageError> {
        let image = self.read(&hex(id)).map_err(|e| match e {
            ImageError::Io { .. } => ImageError::Unknown(hex(id)),
            other => other,
        })?;
        for file in [&image.manifest.kernel, &image.manifest.initrd] {
            let path = image.dir.join(&file.file);
            if hash_file(&path)? != file.blake3 {
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
        cmdline: &str,
    ) -> Result<Image, ImageError> {
        let kernel_bytes = std::fs::read(kernel).map_err(|e| io(kernel, e))?;
        let initrd_bytes = std::fs::read(initrd).map_err(|e| io(initrd, e))?;
        self.add_bytes(name, &kernel_bytes, &initrd_bytes, cmdline)
    }

    pub(crate) fn add_bytes(
        &self,
        name: &str,
        kernel: &[u8],
        initrd: &[u8],
        cmdline: &str,
    ) -> Result<Image, ImageError> {
        let manifest = Manifest {
            name: name.to_string(),
            arch: "x86_64".into(),
            kernel: ImageFile {
                file: "kernel".into(),
                blake3: blake3::hash(kernel).to_hex().to_string(),
            },
            initrd: ImageFile {
                file: "initrd".into(),
                blake3: blake3::hash(initrd).to_hex().to_string(),
            },
            cmdline: cmdline.to_string(),
        };
        let id = manifest.id();
        let dir = self.dir.join(hex(&id));
        // Written under a temporary name and renamed: a half-written image
        // is never listed.
        let tmp = self.dir.join(format!(".{}.tmp", hex(&id)));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        let write = |file: &str, bytes: &[u8]| {
            let path = tmp.join(file);
            std::fs::write(&path, bytes).map_err(|e| io(&path, e))
        };
        write("kernel", kernel)?;
        write("initrd", initrd)?;
        write(
            "manifest.json",
            &serde_json::to_vec_pretty(&manifest).expect("plain data serialises"),
        )?;
        if dir.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        } else {
            std::fs::rename(&tmp, &dir).map_err(|e| io(&dir, e))?;
        }
        Ok(Image { id, manifest, dir })
    }
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
