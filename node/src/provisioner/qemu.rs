//! Real VMs: one QEMU micro-VM per lease.
//!
//! `-M microvm` with qboot, the image's kernel and initramfs, `vcpus` and
//! `memory_mib` from the spec, a fresh copy-on-write qcow2 disk of
//! `disk_gib` (the lease's `/dev/vda`), user-mode networking with the
//! guest's SSH port forwarded to a host port from the configured range, the
//! customer's key passed through fw_cfg, and a QMP socket for status and
//! shutdown. Hardware KVM where a smoke boot shows it works, TCG (software
//! emulation) otherwise.
//!
//! QEMU runs daemonised, so VMs outlive a node restart: each VM's directory
//! (`<dir>/<request>/`) holds its record (`vm.json`), pid file, QMP
//! socket, console log, key and disk; a restarted node adopts the VMs whose
//! process is still the QEMU it started, and reports the others failed (the
//! lease is then terminated and their directory removed). The node never
//! runs more vCPUs or memory than its budget allows: a request beyond it is
//! refused, not overcommitted.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    ops::RangeInclusive,
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use anchor_lang::prelude::Pubkey;
use dagger_client::VmSpec;
use serde::{Deserialize, Serialize};

use super::{Endpoint, ProvisionError, Provisioner, ServedImages, VmStatus};
use crate::images::{hex, Catalog};

/// Which accelerator to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualisation, if a smoke boot shows it works; else TCG.
    Auto,
    Kvm,
    Tcg,
}

#[derive(Clone, Debug)]
pub struct QemuSettings {
    /// Where VM directories live (`<data_dir>/vms`).
    pub dir: PathBuf,
    pub catalog: Catalog,
    /// Host ports forwarded to the VMs' SSH port.
    pub ports: RangeInclusive<u16>,
    /// Bind address of the forwarded ports.
    pub bind: std::net::IpAddr,
    /// Host name or address customers connect to (in the endpoint).
    pub public_host: String,
    /// Most vCPUs and memory all VMs together may use.
    pub max_vcpus: u32,
    pub max_memory_mib: u64,
    pub accel: Accel,
    /// How long a VM may take to answer on SSH.
    pub boot_timeout: Duration,
    /// How long a running VM may stay unhealthy (not running per QMP)
    /// before it counts as failed.
    pub unhealthy_grace: Duration,
    pub qemu: PathBuf,
    pub qemu_img: PathBuf,
    /// The account QEMU drops to when the node runs as root.
    pub vm_user: String,
}

impl QemuSettings {
    /// Defaults for a node keeping its VMs under `data_dir`.
    pub fn new(data_dir: &Path, catalog: Catalog) -> QemuSettings {
        QemuSettings {
            dir: data_dir.join("vms"),
            catalog,
            ports: 22_000..=22_999,
            bind: [127, 0, 0, 1].into(),
            public_host: "127.0.0.1".into(),
            // One vCPU per host thread: never overcommitted.
            max_vcpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            max_memory_mib: host_memory_mib().map_or(2_048, |m| m * 3 / 4),
            accel: Accel::Auto,
            boot_timeout: Duration::from_secs(90),
            unhealthy_grace: Duration::from_secs(30),
            qemu: PathBuf::from("qemu-system-x86_64"),
            qemu_img: PathBuf::from("qemu-img"),
            vm_user: super::confine::DEFAULT_VM_USER.to_string(),
        }
    }
}

/// Memory a VM's QEMU uses beyond its guest's (device models, the TCG
/// translation cache capped at [`TCG_CACHE_MIB`], buffers): counted
/// against the budget with the guest memory.
pub const QEMU_OVERHEAD_MIB: u64 = 96;

/// The TCG translation cache, MiB (QEMU's default is up to 1 GiB).
const TCG_CACHE_MIB: u64 = 32;

/// Total memory of the host, from `/proc/meminfo`.
pub fn host_memory_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// Whether QEMU and its firmware are installed.
pub fn qemu_available(qemu: &Path) -> bool {
    Command::new(qemu)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && Path::new(QBOOT).exists()
}

pub(super) const QBOOT: &str = "/usr/share/qemu/qboot.rom";

/// A VM's record on disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct VmRecord {
    request: String,
    vcpus: u16,
    memory_mib: u32,
    disk_gib: u32,
    image: String,
    port: u16,
    pid: u32,
    endpoint: Endpoint,
    /// Set once the VM is known dead (or could not be adopted).
    failed: bool,
}

pub struct QemuProvisioner {
    settings: QemuSettings,
    /// Resolved accelerator (`auto` probed once at open).
    accel: Accel,
    /// The guest clock hint for the kernel (without it a guest on a busy
    /// host may hang calibrating its TSC).
    tsc_khz: Option<u64>,
    vms: Mutex<BTreeMap<String, VmRecord>>,
    /// VMs being started: their port and resources are taken from the
    /// moment the lock is released, so concurrent provisions never share
    /// a port or overrun the budget.
    starting: Mutex<BTreeMap<String, (u16, u64, u64)>>,
    /// QEMU processes this node started (reaped once they exit).
    children: Mutex<BTreeMap<String, std::process::Child>>,
    /// Since when each VM has looked unhealthy (cleared when it recovers).
    unhealthy: Mutex<BTreeMap<String, Instant>>,
    confinement: super::confine::Confinement,
}

fn backend(what: impl std::fmt::Display) -> ProvisionError {
    ProvisionError::Backend(what.to_string())
}

fn state_err(path: &Path, e: impl std::fmt::Display) -> ProvisionError {
    ProvisionError::State {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

impl QemuProvisioner {
    /// Opens the VM directory, adopting VMs a previous run started.
    pub fn open(settings: QemuSettings) -> Result<QemuProvisioner, ProvisionError> {
        if !qemu_available(&settings.qemu) {
            return Err(backend(format!(
                "{} or {QBOOT} is missing; run scripts/setup-vm-host.sh",
                settings.qemu.display()
            )));
        }
        std::fs::create_dir_all(&settings.dir).map_err(|e| state_err(&settings.dir, e))?;
        let accel = match settings.accel {
            Accel::Auto => {
                let kernel = settings
                    .catalog
                    .list()
                    .into_iter()
                    .next()
                    .map(|i| i.kernel());
                match kernel {
                    Some(kernel) if super::kvm_probe::kvm_usable(&settings.qemu, &kernel) => {
                        Accel::Kvm
                    }
                    _ => Accel::Tcg,
                }
            }
            chosen => chosen,
        };
        tracing::info!(
            accel = ?accel,
            "provisioner: QEMU micro-VMs ({})",
            if accel == Accel::Kvm {
                "hardware virtualisation"
            } else {
                "TCG software emulation: hardware KVM is unavailable or does not work here"
            }
        );
        let confinement = super::confine::Confinement::detect(&settings.vm_user);
        tracing::info!(confinement = %confinement.describe(), "provisioner: how VMs are confined");
        let provisioner = QemuProvisioner {
            tsc_khz: tsc_khz(),
            accel,
            vms: Mutex::new(BTreeMap::new()),
            starting: Mutex::new(BTreeMap::new()),
            children: Mutex::new(BTreeMap::new()),
            unhealthy: Mutex::new(BTreeMap::new()),
            confinement,
            settings,
        };
        provisioner.adopt()?;
        Ok(provisioner)
    }

    /// The accelerator in use.
    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// How VMs are confined on this host.
    pub fn confinement(&self) -> &super::confine::Confinement {
        &self.confinement
    }

    /// Whether the QEMU of the VM of `request` (started at `pid` in `dir`)
    /// still runs; reaps it if this node started it and it exited.
    fn alive(&self, request: &str, pid: u32, dir: &Path) -> bool {
        let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(child) = children.get_mut(request) {
            if !matches!(child.try_wait(), Ok(None)) {
                children.remove(request);
                return false;
            }
        }
        drop(children);
        is_our_qemu(pid, dir)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, VmRecord>> {
        self.vms.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn vm_dir(&self, request: &str) -> PathBuf {
        self.settings.dir.join(request)
    }

    fn save(&self, record: &VmRecord) -> Result<(), ProvisionError> {
        let dir = self.vm_dir(&record.request);
        let path = dir.join("vm.json");
        let tmp = dir.join("vm.json.tmp");
        let text = serde_json::to_vec_pretty(record).expect("plain data serialises");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| state_err(&path, e))
    }

    /// Reads every VM directory: a VM whose QEMU still runs is adopted;
    /// one whose QEMU is gone is kept as failed (so its lease is reported
    /// and ended); a directory without a record (a crash mid-provision)
    /// has its QEMU, if any, stopped and is removed.
    fn adopt(&self) -> Result<(), ProvisionError> {
        let entries =
            std::fs::read_dir(&self.settings.dir).map_err(|e| state_err(&self.settings.dir, e))?;
        let mut vms = self.lock();
        for entry in entries.flatten() {
            let dir = entry.path();
            if !dir.is_dir() {
                continue;
            }
            let record = std::fs::read(dir.join("vm.json"))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<VmRecord>(&bytes).ok());
            match record {
                Some(mut record) => {
                    let alive = is_our_qemu(record.pid, &dir);
                    if !alive && !record.failed {
                        tracing::warn!(request = %record.request, "VM's QEMU is gone; reporting it failed");
                        record.failed = true;
                        let _ = self.save(&record);
                    } else if alive {
                        tracing::info!(request = %record.request, pid = record.pid, "adopted running VM");
                    }
                    vms.insert(record.request.clone(), record);
                }
                None => {
                    if let Some(pid) = read_pid(&dir) {
                        if is_our_qemu(pid, &dir) {
                            kill(pid);
                        }
                    }
                    tracing::warn!(dir = %dir.display(), "removing a VM directory without a record");
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
        Ok(())
    }

    fn free_port(&self, used: &[u16]) -> Option<u16> {
        self.settings.ports.clone().find(|port| {
            !used.contains(port)
                && TcpListener::bind(SocketAddr::new(self.settings.bind, *port)).is_ok()
        })
    }

    fn cmdline(&self, image_cmdline: &str) -> String {
        let mut args = String::from("console=ttyS0 panic=-1 tsc=reliable");
        if let Some(khz) = self.tsc_khz {
            args.push_str(&format!(" tsc_early_khz={khz}"));
        }
        if !image_cmdline.is_empty() {
            args.push(' ');
            args.push_str(image_cmdline);
        }
        args
    }

    /// Starts the VM; returns its QEMU's pid and the public half of the
    /// SSH host key generated for it.
    fn start(
        &self,
        request: &str,
        spec: &VmSpec,
        port: u16,
    ) -> Result<(u32, [u8; 32]), ProvisionError> {
        let image = self.settings.catalog.get(&spec.image_id).map_err(backend)?;
        let dir = self.vm_dir(request);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| state_err(&dir, e))?;
        super::confine::owner_only(&dir).map_err(|e| state_err(&dir, e))?;
        let disk = dir.join("disk.qcow2");
        let created = Command::new(&self.settings.qemu_img)
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&disk)
            .arg(format!("{}G", spec.disk_gib))
            .output()
            .map_err(|e| backend(format!("qemu-img: {e}")))?;
        if !created.status.success() {
            return Err(backend(format!(
                "qemu-img create: {}",
                String::from_utf8_lossy(&created.stderr).trim()
            )));
        }
        super::confine::owner_only(&disk).map_err(|e| state_err(&disk, e))?;
        let key = dir.join("ssh_key.pub");
        std::fs::write(
            &key,
            dagger_client::ssh::format_public_key(&spec.ssh_key) + "\n",
        )
        .map_err(|e| state_err(&key, e))?;
        super::confine::owner_only(&key).map_err(|e| state_err(&key, e))?;
        // The VM's SSH host key, made here and handed to the guest by
        // fw_cfg (only the node reaches it): its public half goes into the
        // endpoint the quorum attests, so customers pin it.
        let host = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let host_public = host.verifying_key().to_bytes();
        let host_key = dir.join("host_key");
        std::fs::write(
            &host_key,
            dropbear_ed25519_key(&host.to_bytes(), &host_public),
        )
        .map_err(|e| state_err(&host_key, e))?;
        super::confine::owner_only(&host_key).map_err(|e| state_err(&host_key, e))?;
        let accel = match self.accel {
            Accel::Kvm => "kvm".to_string(),
            _ => format!("tcg,tb-size={TCG_CACHE_MIB}"),
        };
        let cpu = if self.accel == Accel::Kvm {
            "host"
        } else {
            "max"
        };
        let errors = dir.join("qemu.err");
        let stderr = std::fs::File::create(&errors).map_err(|e| state_err(&errors, e))?;
        let mut command = Command::new(&self.settings.qemu);
        command
            .args(["-M", "microvm,pit=on,pic=on,rtc=on,isa-serial=on"])
            .args(["-bios", QBOOT, "-accel", &accel, "-cpu", cpu])
            .args(["-smp", &spec.vcpus.to_string()])
            .args(["-m", &spec.memory_mib.to_string()])
            .args([
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-no-reboot",
            ])
            .arg("-kernel")
            .arg(image.kernel())
            .arg("-initrd")
            .arg(image.initrd())
            .args(["-append", &self.cmdline(&image.manifest.cmdline)])
            .args(["-device", "virtio-net-device,netdev=n0"])
            // `restrict=on`: the guest reaches nothing of the host or
            // beyond; only the SSH forward reaches the guest.
            .arg("-netdev")
            .arg(format!(
                "user,id=n0,restrict=on,hostfwd=tcp:{}:{port}-:22",
                self.settings.bind
            ))
            .arg("-drive")
            .arg(format!(
                "id=d0,file={},format=qcow2,if=none",
                disk.display()
            ))
            .args(["-device", "virtio-blk-device,drive=d0"])
            .args(["-device", "virtio-rng-device"])
            .arg("-fw_cfg")
            .arg(format!("name=opt/dagger/ssh_key,file={}", key.display()))
            .arg("-fw_cfg")
            .arg(format!(
                "name=opt/dagger/host_key,file={}",
                host_key.display()
            ))
            .arg("-qmp")
            .arg(format!(
                "unix:{},server=on,wait=off",
                dir.join("qmp.sock").display()
            ))
            .args([
                "-chardev",
                &format!("ringbuf,id=console,size={}", super::confine::CONSOLE_BYTES),
                "-serial",
                "chardev:console",
            ])
            .arg("-pidfile")
            .arg(dir.join("qemu.pid"))
            .args(self.confinement.args(&dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        super::confine::Confinement::limit(&mut command, u64::from(spec.disk_gib) << 30);
        let mut child = command
            .spawn()
            .map_err(|e| backend(format!("{}: {e}", self.settings.qemu.display())))?;
        let pid = child.id();
        // A QEMU that refuses its arguments exits at once.
        let settle = Instant::now() + Duration::from_millis(300);
        while Instant::now() < settle {
            if let Ok(Some(status)) = child.try_wait() {
                let text = std::fs::read_to_string(&errors).unwrap_or_default();
                return Err(backend(format!(
                    "QEMU did not start ({status}): {}",
                    text.trim()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request.to_string(), child);
        Ok((pid, host_public))
    }

    /// Stops a VM's QEMU (QMP `quit`, then SIGKILL) and removes its directory.
    fn destroy(&self, record: &VmRecord) {
        let dir = self.vm_dir(&record.request);
        let request = &record.request;
        if self.alive(request, record.pid, &dir) {
            let _ = qmp(&dir.join("qmp.sock"), "quit");
            let deadline = Instant::now() + Duration::from_secs(3);
            while self.alive(request, record.pid, &dir) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if self.alive(request, record.pid, &dir) {
                kill(record.pid);
                let deadline = Instant::now() + Duration::from_secs(2);
                while self.alive(request, record.pid, &dir) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        self.children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(request);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The guest console's last bytes (for a VM that did not boot).
    fn console_tail(&self, request: &str) -> String {
        let socket = self.vm_dir(request).join("qmp.sock");
        let command = serde_json::json!({
            "execute": "ringbuf-read",
            "arguments": {"device": "console", "size": 4096, "format": "utf8"},
        });
        qmp(&socket, &command.to_string()).unwrap_or_default()
    }

    /// Takes a port and the resources of `spec` for `key`, or says why
    /// not. Everything that has a QEMU process counts (a failed VM too,
    /// until its process is gone), each with QEMU's own overhead, and so do
    /// VMs being started.
    fn reserve(&self, key: &str, spec: &VmSpec) -> Result<u16, ProvisionError> {
        let vms = self.lock();
        if let Some(record) = vms.get(key) {
            return Err(if record.failed {
                backend("this lease's VM failed")
            } else {
                ProvisionError::Backend("already running".into())
            });
        }
        let mut starting = self.starting.lock().unwrap_or_else(|p| p.into_inner());
        if starting.contains_key(key) {
            return Err(backend("this lease's VM is being started"));
        }
        let mut vcpus = 0u64;
        let mut memory = 0u64;
        for r in vms.values() {
            if !r.failed || is_our_qemu(r.pid, &self.vm_dir(&r.request)) {
                vcpus += u64::from(r.vcpus);
                memory += u64::from(r.memory_mib) + QEMU_OVERHEAD_MIB;
            }
        }
        for (_, c, m) in starting.values() {
            vcpus += c;
            memory += m;
        }
        let want_memory = u64::from(spec.memory_mib) + QEMU_OVERHEAD_MIB;
        if vcpus + u64::from(spec.vcpus) > u64::from(self.settings.max_vcpus)
            || memory + want_memory > self.settings.max_memory_mib
        {
            return Err(ProvisionError::Capacity(format!(
                "{} vCPUs and {want_memory} MiB more (in use: {vcpus} vCPUs, {memory} MiB, QEMU's \
                 {QEMU_OVERHEAD_MIB} MiB per VM included; budget {} vCPUs, {} MiB)",
                spec.vcpus, self.settings.max_vcpus, self.settings.max_memory_mib
            )));
        }
        let used: Vec<u16> = vms
            .values()
            .map(|r| r.port)
            .chain(starting.values().map(|(p, _, _)| *p))
            .collect();
        let port = self
            .free_port(&used)
            .ok_or_else(|| ProvisionError::Capacity("no free SSH port in the range".into()))?;
        starting.insert(key.to_string(), (port, u64::from(spec.vcpus), want_memory));
        Ok(port)
    }
}

impl Provisioner for QemuProvisioner {
    fn name(&self) -> &'static str {
        match self.accel {
            Accel::Kvm => "qemu-kvm",
            _ => "qemu-tcg",
        }
    }

    fn provision(&self, request: &Pubkey, spec: &VmSpec) -> Result<Endpoint, ProvisionError> {
        let key = request.to_string();
        if let Some(record) = self.lock().get(&key) {
            return if record.failed {
                Err(backend("this lease's VM failed"))
            } else {
                Ok(record.endpoint.clone())
            };
        }
        let port = self.reserve(&key, spec)?;
        let started = self.start(&key, spec, port);
        self.starting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        let (pid, host_key) = match started {
            Ok(started) => started,
            Err(err) => {
                let _ = std::fs::remove_dir_all(self.vm_dir(&key));
                return Err(err);
            }
        };
        let record = VmRecord {
            request: key.clone(),
            vcpus: spec.vcpus,
            memory_mib: spec.memory_mib,
            disk_gib: spec.disk_gib,
            image: hex(&spec.image_id),
            port,
            pid,
            endpoint: Endpoint(dagger_client::endpoint::VmEndpoint::format(
                "root",
                &self.settings.public_host,
                port,
                &host_key,
            )),
            failed: false,
        };
        self.save(&record)?;
        self.lock().insert(key.clone(), record.clone());
        tracing::info!(%request, port, pid, "VM started; waiting for SSH");
        let started = Instant::now();
        let address = SocketAddr::new(self.settings.bind, port);
        while started.elapsed() < self.settings.boot_timeout {
            if !self.alive(&key, pid, &self.vm_dir(&key)) {
                break;
            }
            if ssh_banner(address) {
                tracing::info!(%request, ms = started.elapsed().as_millis() as u64, "VM answers on SSH");
                return Ok(record.endpoint);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        tracing::warn!(
            %request,
            console = %self.console_tail(&key),
            "VM never answered on SSH; destroying it"
        );
        self.lock().remove(&key);
        self.destroy(&record);
        Err(backend("the VM did not become reachable over SSH"))
    }

    /// Failed once the QEMU process is gone, or once QMP said for
    /// `unhealthy_grace` that the guest is not running (paused, shut down,
    /// panicked). Health never rests on the guest's forwarded SSH port: the
    /// port is reachable by others, and a neighbour holding connections to
    /// it must not be able to get the VM terminated. A QMP socket that does
    /// not answer (only the node can reach it; QEMU serves one client at a
    /// time) says nothing either way.
    fn status(&self, request: &Pubkey) -> VmStatus {
        let key = request.to_string();
        let record = {
            let vms = self.lock();
            match vms.get(&key) {
                None => return VmStatus::Unknown,
                Some(record) if record.failed => return VmStatus::Failed,
                Some(record) => record.clone(),
            }
        };
        let dir = self.vm_dir(&key);
        let dead = !self.alive(&key, record.pid, &dir);
        let healthy = !dead && {
            let stopped = qmp(&dir.join("qmp.sock"), "query-status")
                .is_ok_and(|answer| !answer.contains("\"status\": \"running\""));
            !stopped
        };
        let mut unhealthy = self.unhealthy.lock().unwrap_or_else(|p| p.into_inner());
        if healthy {
            unhealthy.remove(&key);
            return VmStatus::Running;
        }
        let since = *unhealthy.entry(key.clone()).or_insert_with(Instant::now);
        if !dead && since.elapsed() < self.settings.unhealthy_grace {
            return VmStatus::Running;
        }
        unhealthy.remove(&key);
        drop(unhealthy);
        tracing::warn!(%request, dead, "VM failed");
        let mut failed = record;
        failed.failed = true;
        let _ = self.save(&failed);
        if let Some(r) = self.lock().get_mut(&key) {
            r.failed = true;
        }
        VmStatus::Failed
    }

    fn terminate(&self, request: &Pubkey) -> Result<(), ProvisionError> {
        let record = self.lock().remove(&request.to_string());
        if let Some(record) = record {
            tracing::info!(%request, "destroying VM");
            self.destroy(&record);
        }
        Ok(())
    }

    fn vms(&self) -> Vec<Pubkey> {
        self.lock().keys().filter_map(|k| k.parse().ok()).collect()
    }

    fn images(&self) -> ServedImages {
        ServedImages::Only(
            self.settings
                .catalog
                .list()
                .into_iter()
                .map(|image| image.id)
                .collect(),
        )
    }
}

fn read_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("qemu.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether `pid` is alive and is the QEMU of the VM in `dir` (a recycled
/// pid belongs to some other process).
fn is_our_qemu(pid: u32, dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // A zombie (state Z) is dead.
    let zombie = stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    let needle = dir.to_string_lossy();
    !zombie
        && cmdline
            .split(|b| *b == 0)
            .any(|arg| String::from_utf8_lossy(arg).contains(needle.as_ref()))
}

fn kill(pid: u32) {
    // SAFETY: sending a signal to a process id has no memory effects.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
}

/// Sends one QMP command and waits for its answer. Never blocks for long:
/// QEMU accepts one QMP client at a time, and a plain `connect` to a socket
/// whose backlog is full would wait until the other client leaves.
fn qmp(socket: &Path, command: &str) -> std::io::Result<String> {
    let raw = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    raw.connect_timeout(
        &socket2::SockAddr::unix(socket)?,
        Duration::from_millis(500),
    )?;
    let stream = UnixStream::from(std::os::fd::OwnedFd::from(raw));
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?; // greeting
    let command = if command.starts_with('{') {
        command.to_string()
    } else {
        format!("{{\"execute\":\"{command}\"}}")
    };
    for cmd in ["{\"execute\":\"qmp_capabilities\"}".to_string(), command] {
        writeln!(writer, "{cmd}")?;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(String::new());
            }
            if line.contains("\"return\"") || line.contains("\"error\"") {
                break;
            }
        }
    }
    Ok(line)
}

/// An ed25519 private key in dropbear's file format (what `dropbear -r`
/// reads): the key type, then the 32-byte seed and the public key as one
/// 64-byte string.
pub fn dropbear_ed25519_key(seed: &[u8; 32], public: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 11 + 4 + 64);
    out.extend_from_slice(&11u32.to_be_bytes());
    out.extend_from_slice(b"ssh-ed25519");
    out.extend_from_slice(&64u32.to_be_bytes());
    out.extend_from_slice(seed);
    out.extend_from_slice(public);
    out
}

/// Whether an SSH server answers at `address` (it sends its banner first).
fn ssh_banner(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(1_000)));
    let mut banner = [0u8; 4];
    stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-"
}

/// The host's TSC frequency in kHz (from `/proc/cpuinfo`).
fn tsc_khz() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu MHz"))?;
    let mhz: f64 = line.split(':').nth(1)?.trim().parse().ok()?;
    Some((mhz * 1000.0) as u64)
}
