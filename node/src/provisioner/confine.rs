//! How a VM's QEMU is confined, so that a tenant with a root shell in its
//! guest (and a QEMU escape) reaches as little of the host as possible:
//!
//! * no network path to the host: user-mode networking with
//!   `restrict=on`, so the guest reaches neither the host's loopback (the
//!   node's APIs, the Solana RPC, other VMs' forwarded ports) nor anything
//!   else; only the SSH port forward the node sets up reaches the guest;
//! * a seccomp filter (`-sandbox on,obsolete=deny,spawn=deny,
//!   resourcecontrol=deny`): no fork or exec, no obsolete or scheduling
//!   system calls;
//! * where the node runs as root: QEMU drops to an unprivileged account of
//!   its own (`-runas`, `dagger-vm` by default, created by
//!   `scripts/setup-vm-host.sh`) and chroots into the VM's directory,
//!   which only root can read (`0700`, files `0600`): an escaped QEMU can
//!   read neither the node's key nor another VM's disk;
//! * resource limits set before QEMU starts: no core dumps, a file size
//!   cap (the disk it was given, plus its metadata), a cap on open files;
//!   its console is a 256 KiB ring buffer in memory, not a growing file.
//!
//! A node that does not run as root cannot change QEMU's uid: QEMU then
//! runs as the node's user, still under seccomp and without a network path
//! to the host, and the node says so at start (`/status` shows it too).

use std::{
    ffi::OsString,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::Path,
    process::Command,
};

/// The account QEMU drops to, unless configured otherwise.
pub const DEFAULT_VM_USER: &str = "dagger-vm";

/// Size of a VM's console ring buffer.
pub const CONSOLE_BYTES: u64 = 256 << 10;

/// QEMU's seccomp filter.
const SANDBOX: &str = "on,obsolete=deny,spawn=deny,resourcecontrol=deny";

/// Open files a VM's QEMU may hold.
const MAX_OPEN_FILES: u64 = 1_024;

/// How this host confines QEMU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confinement {
    /// The unprivileged account QEMU runs as (`-runas` and `-chroot`);
    /// `None` when the node cannot switch accounts (not root, or the
    /// account is missing).
    pub user: Option<String>,
}

impl Confinement {
    /// What the host allows: an own account for QEMU when the node runs
    /// as root and `user` exists.
    pub fn detect(user: &str) -> Confinement {
        // SAFETY: geteuid has no preconditions and touches no memory.
        let root = unsafe { libc::geteuid() } == 0;
        let exists = account_exists(user);
        if !root {
            tracing::warn!(
                "the node does not run as root: QEMU runs as the node's own user (under \
                 seccomp, without a network path to the host); run the node as root to give \
                 VMs an account of their own"
            );
        } else if !exists {
            tracing::warn!(
                user,
                "the VM account does not exist (scripts/setup-vm-host.sh creates it): QEMU \
                 runs as root under seccomp"
            );
        }
        Confinement {
            user: (root && exists).then(|| user.to_string()),
        }
    }

    /// One line for logs and `/status`.
    pub fn describe(&self) -> String {
        match &self.user {
            Some(user) => format!("seccomp, own account `{user}`, chroot, no host network"),
            None => "seccomp, no host network (QEMU runs as the node's user)".to_string(),
        }
    }

    /// QEMU arguments for the VM in `dir`.
    pub fn args(&self, dir: &Path) -> Vec<OsString> {
        let mut out: Vec<OsString> = vec!["-sandbox".into(), SANDBOX.into()];
        if let Some(user) = &self.user {
            out.extend(["-runas".into(), user.into(), "-chroot".into()]);
            out.push(dir.as_os_str().to_owned());
        }
        out
    }

    /// Sets the resource limits and a session of its own on `command` (the
    /// VM survives its node's restart; `disk_bytes` is the largest file it
    /// may write).
    pub fn limit(command: &mut Command, disk_bytes: u64) {
        let fsize = disk_bytes + (64 << 20);
        // SAFETY: the closure runs in the forked child before exec and only
        // calls async-signal-safe functions (setsid, setrlimit) on plain
        // values.
        unsafe {
            command.pre_exec(move || {
                libc::setsid();
                for (resource, value) in [
                    (libc::RLIMIT_CORE, 0),
                    (libc::RLIMIT_FSIZE, fsize),
                    (libc::RLIMIT_NOFILE, MAX_OPEN_FILES),
                ] {
                    let limit = libc::rlimit {
                        rlim_cur: value as libc::rlim_t,
                        rlim_max: value as libc::rlim_t,
                    };
                    if libc::setrlimit(resource, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
}

/// Makes `path` readable by its owner only (directories also
/// searchable).
pub fn owner_only(path: &Path) -> std::io::Result<()> {
    let mode = if path.is_dir() { 0o700 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Whether `/etc/passwd` lists `user`.
fn account_exists(user: &str) -> bool {
    std::fs::read_to_string("/etc/passwd").is_ok_and(|text| {
        text.lines()
            .any(|line| line.split(':').next() == Some(user))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_follow_what_the_host_allows() {
        let dir = Path::new("/var/lib/dagger/vms/x");
        let own = Confinement {
            user: Some("dagger-vm".into()),
        };
        let args: Vec<String> = own
            .args(dir)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "-sandbox",
                SANDBOX,
                "-runas",
                "dagger-vm",
                "-chroot",
                "/var/lib/dagger/vms/x"
            ]
        );
        let plain = Confinement { user: None };
        assert_eq!(plain.args(dir).len(), 2);
        assert!(own.describe().contains("dagger-vm"));
        assert!(!account_exists("no-such-user-here-surely"));
        assert!(account_exists("root"));
    }

    /// The shipped unit keeps the promises made here: QEMU can drop to its
    /// own account and chroot, and VMs outlive a node restart.
    #[test]
    fn the_shipped_systemd_unit_confines_and_keeps_vms() {
        let unit = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dagger-node.service"),
        )
        .unwrap();
        let value = |key: &str| {
            unit.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(value("KillMode"), "process");
        assert_eq!(value("User"), "root");
        let caps = value("CapabilityBoundingSet");
        for cap in ["CAP_SETUID", "CAP_SETGID", "CAP_SYS_CHROOT", "CAP_KILL"] {
            assert!(caps.contains(cap), "{cap} missing from {caps}");
        }
    }
}
