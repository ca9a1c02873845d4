//! A Debian image built from the host's Debian package sources with
//! `debootstrap`: a root file system customers' software expects (`apt`,
//! `dpkg`, bash, coreutils, a real init), booted by the same cloud kernel
//! as the default image.
//!
//! - root file system: `debootstrap --variant=minbase` of the host's suite
//!   plus `sysvinit-core` (init that reaps orphans and runs our inittab),
//!   `dropbear-bin` (the SSH server; `openssh-sftp-server` for `sftp`),
//!   `iproute2`, `procps`, `ca-certificates`; package caches and lists
//!   removed; an ext4 file system sized to its contents, which each VM
//!   grows to its lease's disk at boot (`resize2fs`).
//! - initramfs: busybox, the virtio modules; it mounts `/dev/vda` (the VM's
//!   copy-on-write layer over the root file system) and hands over to
//!   `/sbin/init`.
//! - at boot, `/usr/lib/dagger/boot` mounts the kernel file systems and
//!   sets up the network; `/usr/lib/dagger/agent` (the guest agent) then
//!   waits for the node to hand over the customer's key and host key, and
//!   starts dropbear. No key is baked into the image.
//!
//! Building needs root (debootstrap) and takes about a minute; with a
//! cache directory, a build whose inputs are unchanged reuses the last one.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use super::{
    cpio::Archive,
    default::{build_err, default_kernel_dir, kernel_and_modules, static_busybox, MODULES},
    Catalog, Image, ImageError,
};

/// Packages added to debootstrap's minimal base.
const PACKAGES: &[&str] = &[
    "sysvinit-core",
    "dropbear-bin",
    "openssh-sftp-server",
    "iproute2",
    "procps",
    "ca-certificates",
];

/// Paths removed from the root after the build (caches, lists, docs).
const PRUNE: &[&str] = &[
    "var/cache/apt/archives",
    "var/cache/apt/pkgcache.bin",
    "var/cache/apt/srcpkgcache.bin",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
    "usr/share/info",
];

const INITRAMFS_INIT: &str = r#"#!/bin/busybox sh
# DAGGER Debian image, first stage: drivers, then the VM's root disk.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in MODULES; do insmod /lib/modules/$m.ko 2>/dev/null; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
mkdir -p /newroot
if ! mount -t ext4 -o rw /dev/vda /newroot; then
  echo "dagger: cannot mount the root file system on /dev/vda"
  poweroff -f
fi
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /sbin/init
"#;

const INITTAB: &str = "\
# DAGGER: no getty (the console is a log), the agent hands the VM over.
id:2:initdefault:
si::sysinit:/usr/lib/dagger/boot
ag:2:once:/usr/lib/dagger/agent
";

const BOOT: &str = r#"#!/bin/sh
# DAGGER: kernel file systems, network, the root grown to the VM's disk.
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sys /sys 2>/dev/null
mountpoint -q /dev || mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/lock
hostname dagger-vm
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
resize2fs /dev/vda >/dev/null 2>&1 || true
"#;

/// What the Debian image is built from.
#[derive(Clone, Debug)]
pub struct DebianImageOptions {
    /// The unpacked kernel package (as for the default image).
    pub kernel_dir: PathBuf,
    pub busybox: PathBuf,
    /// Package mirror; default: the host's first `deb` source.
    pub mirror: Option<String>,
    /// Debian suite; default: the host's (`VERSION_CODENAME`).
    pub suite: Option<String>,
    /// Keep the built files here, keyed by everything they are built
    /// from, and reuse them.
    pub cache_dir: Option<PathBuf>,
}

impl Default for DebianImageOptions {
    fn default() -> Self {
        DebianImageOptions {
            kernel_dir: default_kernel_dir(),
            busybox: PathBuf::from("/bin/busybox"),
            mirror: None,
            suite: None,
            cache_dir: None,
        }
    }
}

/// The host's first Debian package source (`deb` line or deb822 `URIs:`).
pub fn host_mirror() -> Option<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for line in text.lines().map(str::trim) {
            let uri = if let Some(rest) = line.strip_prefix("deb ") {
                rest.split_whitespace().find(|w| w.contains("://"))
            } else {
                line.strip_prefix("URIs:")
                    .and_then(|rest| rest.split_whitespace().next())
            };
            if let Some(uri) = uri.filter(|u| !u.contains("security")) {
                return Some(uri.to_string());
            }
        }
    }
    None
}

/// The host's Debian suite.
pub fn host_suite() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

fn run(command: &mut Command, what: &str) -> Result<(), ImageError> {
    let out = command
        .output()
        .map_err(|e| build_err(format!("cannot run {what}: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let tail: Vec<&str> = stderr.lines().chain(stdout.lines()).rev().take(8).collect();
        return Err(build_err(format!(
            "{what} failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )));
    }
    Ok(())
}

fn write(root: &Path, path: &str, mode: u32, text: &str) -> Result<(), ImageError> {
    use std::os::unix::fs::PermissionsExt;
    let path = root.join(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| super::io(dir, e))?;
    }
    std::fs::write(&path, text).map_err(|e| super::io(&path, e))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| super::io(&path, e))
}

/// Bytes used under `root` (for sizing the file system).
fn used_bytes(root: &Path) -> u64 {
    let out = Command::new("du").args(["-sxb"]).arg(root).output();
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(1 << 30)
}

/// Builds the Debian image into `catalog`; `progress` hears each step.
pub fn build_debian(
    options: &DebianImageOptions,
    catalog: &Catalog,
    progress: &dyn Fn(&str),
) -> Result<Image, ImageError> {
    let mirror = options
        .mirror
        .clone()
        .or_else(host_mirror)
        .ok_or_else(|| build_err("no Debian package source on this host; pass --mirror"))?;
    let suite = options
        .suite
        .clone()
        .or_else(host_suite)
        .ok_or_else(|| build_err("cannot tell the host's Debian suite; pass --suite"))?;
    let (kernel, version, modules) = kernel_and_modules(&options.kernel_dir)?;
    let busybox = static_busybox(&options.busybox)?;
    let agent = format!(
        "#!/bin/sh\n{}\ndagger_agent /etc/dropbear/dropbear_ed25519_host_key\n",
        crate::provisioner::agent::GUEST_AGENT
    );
    let name = format!("debian ({suite}, kernel {version})");

    let staging = catalog.staging()?;
    let key = {
        let mut h = blake3::Hasher::new();
        for part in [
            mirror.as_bytes(),
            suite.as_bytes(),
            PACKAGES.join(",").as_bytes(),
            PRUNE.join(",").as_bytes(),
            INITRAMFS_INIT.as_bytes(),
            INITTAB.as_bytes(),
            BOOT.as_bytes(),
            agent.as_bytes(),
            &kernel,
            &busybox,
        ] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        for (_, bytes) in &modules {
            h.update(bytes);
        }
        h.finalize().to_hex().to_string()
    };
    let cached = options.cache_dir.as_ref().map(|d| d.join(&key[..32]));
    if let Some(cached) = cached.as_ref().filter(|d| d.join("rootfs").exists()) {
        progress(&format!("reusing the build in {}", cached.display()));
        for file in ["kernel", "initrd", "rootfs"] {
            let from = cached.join(file);
            std::fs::copy(&from, staging.path().join(file)).map_err(|e| super::io(&from, e))?;
        }
        return catalog.install(&name, staging, "quiet");
    }

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(build_err(
            "debootstrap needs root: run `dagger-node image build-debian` as root",
        ));
    }
    let root = staging.path().join("root");
    progress(&format!(
        "debootstrap {suite} from {mirror} (about a minute)"
    ));
    run(
        Command::new("debootstrap")
            .args(["--variant=minbase", "--merged-usr"])
            .arg(format!("--include={}", PACKAGES.join(",")))
            .arg(&suite)
            .arg(&root)
            .arg(&mirror),
        "debootstrap (install it with scripts/setup-vm-host.sh)",
    )?;
    progress("configuring the root file system");
    for path in PRUNE {
        let path = root.join(path);
        if path.is_dir() {
            let _ = std::fs::remove_dir_all(&path);
            let _ = std::fs::create_dir_all(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    let _ = std::fs::create_dir_all(root.join("var/cache/apt/archives/partial"));
    let _ = std::fs::create_dir_all(root.join("var/lib/apt/lists/partial"));
    let _ = std::fs::remove_dir_all(root.join("etc/dropbear"));
    write(&root, "etc/inittab", 0o644, INITTAB)?;
    write(&root, "usr/lib/dagger/boot", 0o755, BOOT)?;
    write(&root, "usr/lib/dagger/agent", 0o755, &agent)?;
    write(&root, "etc/hostname", 0o644, "dagger-vm\n")?;
    write(
        &root,
        "etc/hosts",
        0o644,
        "127.0.0.1 localhost\n127.0.1.1 dagger-vm\n",
    )?;
    write(&root, "etc/fstab", 0o644, "/dev/vda / ext4 defaults 0 1\n")?;
    write(
        &root,
        "etc/apt/sources.list",
        0o644,
        &format!("deb {mirror} {suite} main\n"),
    )?;
    let _ = std::fs::write(root.join("etc/machine-id"), "");

    progress("making the ext4 root file system");
    // Its contents, a quarter more and 64 MiB for the journal and growth
    // before the first boot resizes it to the VM's disk.
    let size_mib = used_bytes(&root) / (1 << 20) * 5 / 4 + 64;
    let rootfs = staging.path().join("rootfs");
    run(
        Command::new("mke2fs")
            .args(["-q", "-t", "ext4", "-L", "dagger-root", "-d"])
            .arg(&root)
            .arg(&rootfs)
            .arg(format!("{size_mib}M")),
        "mke2fs",
    )?;
    std::fs::remove_dir_all(&root).map_err(|e| super::io(&root, e))?;

    let mut archive = Archive::default();
    for dir in ["bin", "dev", "lib", "lib/modules", "proc", "sys", "newroot"] {
        archive.dir(dir);
    }
    archive.file(
        "init",
        0o755,
        INITRAMFS_INIT
            .replace("MODULES", &MODULES.join(" "))
            .as_bytes(),
    );
    archive.file("bin/busybox", 0o755, &busybox);
    archive.symlink("bin/sh", "busybox");
    for (name, bytes) in &modules {
        archive.file(&format!("lib/modules/{name}.ko"), 0o644, bytes);
    }
    let initrd = archive.finish();
    for (file, bytes) in [("kernel", &kernel[..]), ("initrd", &initrd[..])] {
        let path = staging.path().join(file);
        std::fs::write(&path, bytes).map_err(|e| super::io(&path, e))?;
    }
    if let Some(cached) = &cached {
        progress(&format!("keeping the build in {}", cached.display()));
        let tmp = cached.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| super::io(&tmp, e))?;
        for file in ["kernel", "initrd", "rootfs"] {
            std::fs::copy(staging.path().join(file), tmp.join(file))
                .map_err(|e| super::io(&tmp, e))?;
        }
        let _ = std::fs::remove_dir_all(cached);
        std::fs::rename(&tmp, cached).map_err(|e| super::io(cached, e))?;
    }
    catalog.install(&name, staging, "quiet")
}
