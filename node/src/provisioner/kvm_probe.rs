//! Whether hardware KVM can run a stock kernel here, found out by a smoke
//! boot once per host boot and remembered: in this process for every node
//! it runs (a devnet starts several), and on disk
//! (`$XDG_CACHE_HOME/dagger/kvm-probe`, else `~/.cache/dagger/kvm-probe`)
//! for the next process, keyed by the kernel's boot id and the QEMU binary
//! and guest kernel it was made with. A host whose `/dev/kvm` cannot run
//! stock kernels (a nested, paravirtualised KVM) makes the smoke boot crawl
//! or abort; the probe gives up after [`PROBE_TIMEOUT`] and QEMU runs with
//! TCG.

use std::{
    collections::HashMap,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant, UNIX_EPOCH},
};

/// How long a smoke boot may take: a kernel under working KVM reaches its
/// panic about the missing root in about a second.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

/// Whether KVM boots `kernel` with `qemu` on this host (probed at most once
/// per host boot; concurrent callers wait for the one probe).
pub fn kvm_usable(qemu: &Path, kernel: &Path) -> bool {
    static CACHE: OnceLock<Mutex<HashMap<String, bool>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut known = cache.lock().unwrap_or_else(|p| p.into_inner());
    let key = stamp(qemu, kernel);
    if let Some(&works) = known.get(&key) {
        return works;
    }
    let file = cache_file();
    if let Some(works) = file.as_deref().and_then(|f| read_cached(f, &key)) {
        tracing::debug!(works, "KVM probe: result of an earlier probe on this boot");
        known.insert(key, works);
        return works;
    }
    let started = Instant::now();
    let works = smoke_boot(qemu, kernel);
    tracing::info!(
        works,
        took_ms = started.elapsed().as_millis() as u64,
        "KVM probe: smoke boot done"
    );
    if let Some(file) = file {
        write_cached(&file, &key, works);
    }
    known.insert(key, works);
    works
}

/// What the probe's answer depends on.
fn stamp(qemu: &Path, kernel: &Path) -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let file = |p: &Path| {
        let resolved = which(p).unwrap_or_else(|| p.to_path_buf());
        let meta = std::fs::metadata(&resolved).ok();
        let len = meta.as_ref().map_or(0, |m| m.len());
        let modified = meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        format!("{}:{len}:{modified}", resolved.display())
    };
    format!(
        "{} {} {} kvm={}",
        boot.trim(),
        file(qemu),
        file(kernel),
        Path::new("/dev/kvm").exists()
    )
}

/// `p` as found on `PATH` if it has no directory part.
fn which(p: &Path) -> Option<PathBuf> {
    if p.components().count() > 1 {
        return Some(p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(p))
            .find(|candidate| candidate.is_file())
    })
}

fn cache_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("dagger").join("kvm-probe"))
}

fn read_cached(file: &Path, key: &str) -> Option<bool> {
    let text = std::fs::read_to_string(file).ok()?;
    let (stamp, answer) = text.rsplit_once('\n')?;
    (stamp == key).then(|| answer.trim() == "1")
}

fn write_cached(file: &Path, key: &str, works: bool) {
    let Some(dir) = file.parent() else { return };
    let tmp = file.with_extension("tmp");
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, format!("{key}\n{}", u8::from(works))))
        .and_then(|()| std::fs::rename(&tmp, file));
    if let Err(err) = written {
        tracing::debug!(error = %err, "cannot remember the KVM probe's result");
    }
}

/// A smoke boot under KVM: the kernel, without an initramfs, must get as
/// far as its panic about the missing root within a few seconds.
fn smoke_boot(qemu: &Path, kernel: &Path) -> bool {
    if !Path::new("/dev/kvm").exists() {
        return false;
    }
    let child = Command::new(qemu)
        .args(["-accel", "kvm", "-cpu", "host"])
        .args([
            "-M",
            "microvm,pit=on,pic=on,rtc=on,isa-serial=on",
            "-bios",
            super::qemu::QBOOT,
        ])
        .args([
            "-m",
            "128",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
        ])
        .args(["-no-reboot", "-serial", "stdio", "-kernel"])
        .arg(kernel)
        .args(["-append", "console=ttyS0 panic=-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    let deadline = Instant::now() + PROBE_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
    let mut out = String::new();
    let _ = child.stdout.take().map(|mut s| s.read_to_string(&mut out));
    out.contains("Kernel panic")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_answer_is_tied_to_its_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dagger").join("kvm-probe");
        assert_eq!(read_cached(&file, "a"), None);
        write_cached(&file, "boot-1 qemu kernel", true);
        assert_eq!(read_cached(&file, "boot-1 qemu kernel"), Some(true));
        assert_eq!(read_cached(&file, "boot-2 qemu kernel"), None);
        write_cached(&file, "boot-2 qemu kernel", false);
        assert_eq!(read_cached(&file, "boot-2 qemu kernel"), Some(false));
    }

    #[test]
    fn the_stamp_names_the_binaries_and_the_boot() {
        let a = stamp(Path::new("/bin/sh"), Path::new("/nonexistent-kernel"));
        let b = stamp(Path::new("/bin/sh"), Path::new("/other-kernel"));
        assert_ne!(a, b);
        assert!(a.contains("/bin/sh"));
    }
}
