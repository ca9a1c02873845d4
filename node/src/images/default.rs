//! The default image, assembled from the host's Debian packages:
//! the Debian cloud kernel (`linux-image-cloud-amd64`, unpacked by
//! `scripts/setup-vm-host.sh`), and an initramfs with `busybox-static`, the
//! `dropbear-bin` SSH server (and the libraries it links), the virtio and
//! virtio-serial (agent) kernel modules, and an init script.
//!
//! At boot the init script brings up the network (QEMU user networking:
//! 10.0.2.15/24, gateway 10.0.2.2), formats and mounts the VM's disk on
//! `/data`, and runs the guest agent ([`crate::provisioner::agent`]): once
//! a lease takes the VM, the node hands it the customer's key (root's
//! `authorized_keys`) and the host key it generated for this VM (its public
//! half is in the endpoint the quorum attests, so customers pin it), and
//! the agent starts dropbear with password logins off. No key is baked
//! into the image.

use std::path::{Path, PathBuf};

use super::{cpio::Archive, Catalog, Image, ImageError};

/// Where `scripts/setup-vm-host.sh` unpacks the kernel package.
pub const DEFAULT_KERNEL_DIR: &str = "/opt/dagger/kernel";

/// Kernel modules the init script loads, in load order.
pub(super) const MODULES: &[&str] = &[
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "virtio_mmio",
    "failover",
    "net_failover",
    "virtio_net",
    "virtio_blk",
    "virtio-rng",
    "virtio_console",
];

const INIT: &str = r#"#!/bin/busybox sh
# DAGGER default image: network, the VM's disk, then the agent hands over
# the customer's key and starts SSH.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
for m in MODULES; do insmod /lib/modules/$m.ko 2>/dev/null; done
hostname dagger-vm
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
if [ -b /dev/vda ]; then
  mke2fs -q /dev/vda >/dev/null 2>&1 && mount /dev/vda /data
fi
AGENT
dagger_agent /etc/dropbear/dropbear_ed25519_host_key
echo DAGGER-VM-READY
while :; do sleep 3600; done
"#;

/// `DAGGER_KERNEL_DIR`, or where `scripts/setup-vm-host.sh` unpacks the
/// kernel.
pub(super) fn default_kernel_dir() -> PathBuf {
    std::env::var_os("DAGGER_KERNEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_KERNEL_DIR))
}

/// Where the default image's parts come from on the host.
#[derive(Clone, Debug)]
pub struct DefaultImageSources {
    /// The unpacked kernel package: `boot/vmlinuz-<ver>` and
    /// `lib/modules/<ver>/`.
    pub kernel_dir: PathBuf,
    /// A statically linked busybox (`busybox-static`).
    pub busybox: PathBuf,
    /// The dropbear SSH server (`dropbear-bin`).
    pub dropbear: PathBuf,
}

impl Default for DefaultImageSources {
    fn default() -> Self {
        DefaultImageSources {
            kernel_dir: default_kernel_dir(),
            busybox: PathBuf::from("/bin/busybox"),
            dropbear: PathBuf::from("/usr/sbin/dropbear"),
        }
    }
}

pub(super) fn build_err(what: impl Into<String>) -> ImageError {
    ImageError::Build(what.into())
}

const SETUP_HINT: &str = "run scripts/setup-vm-host.sh (it installs busybox-static, dropbear-bin \
                          and the Debian cloud kernel)";

/// The newest `boot/vmlinuz-<version>` under `kernel_dir`.
fn find_kernel(kernel_dir: &Path) -> Result<(PathBuf, String), ImageError> {
    let boot = kernel_dir.join("boot");
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(&boot)
        .map_err(|e| {
            build_err(format!(
                "no kernel in {}: {e}; {SETUP_HINT}",
                boot.display()
            ))
        })?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name.strip_prefix("vmlinuz-")?.to_string();
            Some((version, entry.path()))
        })
        .collect();
    found.sort();
    let (version, path) = found
        .pop()
        .ok_or_else(|| build_err(format!("no vmlinuz-* in {}; {SETUP_HINT}", boot.display())))?;
    Ok((path, version))
}

fn find_module(dir: &Path, name: &str) -> Option<PathBuf> {
    let want = format!("{name}.ko");
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if entry.file_name().to_str() == Some(want.as_str()) {
                return Some(path);
            }
        }
    }
    None
}

/// The shared libraries `binary` loads, as `ldd` reports them (the dynamic
/// loader included).
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| build_err(format!("cannot run ldd: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut libs = Vec::new();
    for line in text.lines() {
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

fn is_static(binary: &[u8]) -> bool {
    !binary
        .windows(b"ld-linux".len())
        .take(8192)
        .any(|w| w == b"ld-linux")
}

fn read(path: &Path) -> Result<Vec<u8>, ImageError> {
    std::fs::read(path).map_err(|e| build_err(format!("{}: {e}; {SETUP_HINT}", path.display())))
}

/// Adds every parent directory of `path` not added yet.
fn parents(archive: &mut Archive, made: &mut std::collections::BTreeSet<String>, path: &str) {
    let mut prefix = String::new();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        if made.insert(prefix.clone()) {
            archive.dir(&prefix);
        }
    }
}

/// A kernel module's name and bytes.
pub(super) type Module = (&'static str, Vec<u8>);

/// The kernel, its version and the modules [`MODULES`] names, in order.
pub(super) fn kernel_and_modules(
    kernel_dir: &Path,
) -> Result<(Vec<u8>, String, Vec<Module>), ImageError> {
    let (kernel_path, version) = find_kernel(kernel_dir)?;
    let kernel = read(&kernel_path)?;
    let modules_dir = kernel_dir.join("lib/modules").join(&version).join("kernel");
    let mut modules = Vec::new();
    for name in MODULES {
        let path = find_module(&modules_dir, name).ok_or_else(|| {
            build_err(format!(
                "kernel module {name} not found under {}",
                modules_dir.display()
            ))
        })?;
        modules.push((*name, read(&path)?));
    }
    Ok((kernel, version, modules))
}

pub(super) fn static_busybox(path: &Path) -> Result<Vec<u8>, ImageError> {
    let busybox = read(path)?;
    if !is_static(&busybox) {
        return Err(build_err(format!(
            "{} is dynamically linked; install busybox-static",
            path.display()
        )));
    }
    Ok(busybox)
}

/// Builds the default image from the host's packages into `catalog`.
pub fn build_default(
    sources: &DefaultImageSources,
    catalog: &Catalog,
) -> Result<Image, ImageError> {
    let (kernel, version, modules) = kernel_and_modules(&sources.kernel_dir)?;
    let busybox = static_busybox(&sources.busybox)?;
    let dropbear = read(&sources.dropbear)?;
    let libraries = shared_libraries(&sources.dropbear)?;

    let mut archive = Archive::default();
    let mut made = std::collections::BTreeSet::new();
    for dir in [
        "bin",
        "dev",
        "etc",
        "lib",
        "lib/modules",
        "proc",
        "root",
        "sys",
        "tmp",
        "usr",
        "usr/sbin",
        "var",
        "var/run",
        "data",
        "etc/dropbear",
    ] {
        made.insert(dir.to_string());
        archive.dir(dir);
    }
    archive.file(
        "init",
        0o755,
        INIT.replace("MODULES", &MODULES.join(" "))
            .replace("AGENT", crate::provisioner::agent::GUEST_AGENT)
            .as_bytes(),
    );
    archive.file("bin/busybox", 0o755, &busybox);
    archive.symlink("bin/sh", "busybox");
    archive.file("usr/sbin/dropbear", 0o755, &dropbear);
    for lib in &libraries {
        let inside = lib.to_string_lossy().trim_start_matches('/').to_string();
        parents(&mut archive, &mut made, &inside);
        archive.file(&inside, 0o755, &read(lib)?);
    }
    for (name, bytes) in &modules {
        archive.file(&format!("lib/modules/{name}.ko"), 0o644, bytes);
    }
    archive.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
    archive.file("etc/group", 0o644, b"root:x:0:\n");
    archive.file("etc/shells", 0o644, b"/bin/sh\n");
    let initrd = archive.finish();
    std::fs::create_dir_all(catalog.dir()).map_err(|e| super::io(catalog.dir(), e))?;
    catalog.add_bytes(
        &format!("dagger-default ({version})"),
        &kernel,
        &initrd,
        "quiet",
    )
}
