//! Real VMs: one QEMU micro-VM per lease.
//!
//! `-M microvm` with qboot, the image's kernel and initramfs, `vcpus` and
//! `memory_mib` from the spec, a fresh copy-on-write qcow2 disk of
//! `disk_gib` (the lease's `/dev/vda`; over the image's root file system
//! if it has one), user-mode networking that reaches nothing of the host, a
//! QMP socket for status and shutdown, and a virtio-serial port to the
//! guest's agent ([`super::agent`]). Hardware KVM where a smoke boot shows
//! it works, TCG (software emulation) otherwise.
//!
//! A VM boots without a lease: no key, no forwarded port. When a lease
//! takes it, the node gives it the customer's key and a fresh host key
//! through the agent, asks QEMU to forward a free host port to its SSH
//! port (QEMU binds it, so a taken port is refused and the next one
//! tried), and reports the lease only once SSH answers there with the
//! pinned host key ([`super::ssh_probe`]). With pools configured
//! ([`PoolSetting`]), a background thread keeps that many VMs of each
//! shape booted in advance: a lease of that shape skips the boot. A pooled
//! VM serves one lease and is destroyed with it; pooled VMs count against
//! the budget, and are stopped to make room when a lease needs it.
//!
//! QEMU runs daemonised, so VMs outlive a node restart: each VM's directory
//! (`<dir>/<name>/`) holds its record (`vm.json`, once it has a lease),
//! pid file, QMP and agent sockets, host key and disk; a restarted node adopts the VMs whose
//! process is still the QEMU it started, and reports the others failed (the
//! lease is then terminated and their directory removed). The node never
//! runs more vCPUs or memory than its budget allows: a request beyond it is
//! refused, not overcommitted.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpListener},
    ops::RangeInclusive,
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Condvar, Mutex,
    },
    time::{Duration, Instant},
};

use anchor_lang::prelude::Pubkey;
use dagger_client::VmSpec;
use serde::{Deserialize, Serialize};

use super::{agent::Agent, Endpoint, ProvisionError, Provisioner, ServedImages, VmStatus};
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
    /// VMs kept booted ahead of leases.
    pub pools: Vec<PoolSetting>,
}

/// "Keep `count` VMs of this size booted for `image` (every image served,
/// if none)". Written `count=2,vcpus=1,memory=128,disk=1[,image=<hex id>]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSetting {
    pub count: usize,
    pub vcpus: u16,
    pub memory_mib: u32,
    pub disk_gib: u32,
    pub image: Option<[u8; 32]>,
}

impl PoolSetting {
    fn shape(&self, image: [u8; 32]) -> Shape {
        Shape {
            image,
            vcpus: self.vcpus,
            memory_mib: self.memory_mib,
            disk_gib: self.disk_gib,
        }
    }
}

impl std::str::FromStr for PoolSetting {
    type Err = String;

    fn from_str(text: &str) -> Result<PoolSetting, String> {
        let mut pool = PoolSetting {
            count: 1,
            vcpus: 1,
            memory_mib: 128,
            disk_gib: 1,
            image: None,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not name=value"))?;
            let number = |max: u64| -> Result<u64, String> {
                match value.parse::<u64>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    _ => Err(format!("{name}={value}: expected 1 to {max}")),
                }
            };
            match name {
                "count" => pool.count = number(64)? as usize,
                "vcpus" => pool.vcpus = number(u64::from(u16::MAX))? as u16,
                "memory" => pool.memory_mib = number(u64::from(u32::MAX))? as u32,
                "disk" => pool.disk_gib = number(u64::from(u32::MAX))? as u32,
                "image" => {
                    let bytes = ::hex::decode(value)
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .ok_or_else(|| {
                            format!("image={value}: expected a 64-digit hex image id")
                        })?;
                    pool.image = Some(bytes);
                }
                other => {
                    return Err(format!(
                        "unknown pool setting `{other}` (count, vcpus, memory, disk, image)"
                    ))
                }
            }
        }
        Ok(pool)
    }
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
            pools: Vec::new(),
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

/// What a VM boots as: its image and size. Pooled VMs are kept per shape
/// and go only to a request of exactly that shape; it is also what nodes
/// announce warm (`NodeTx::PoolsReady`), so one type serves both.
pub use crate::controller::txs::WarmShape as Shape;

/// Memory a VM of `shape` takes from the budget, QEMU's own included.
fn memory_cost(shape: &Shape) -> u64 {
    u64::from(shape.memory_mib) + QEMU_OVERHEAD_MIB
}

/// A VM's record on disk (written once it belongs to a lease).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct VmRecord {
    request: String,
    /// Its directory under the VMs' directory (records written before
    /// pools existed are filed under the request).
    #[serde(default)]
    vm: String,
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

impl VmRecord {
    fn vm_name(&self) -> &str {
        if self.vm.is_empty() {
            &self.request
        } else {
            &self.vm
        }
    }
}

/// A booted VM waiting for a lease: its agent connection is held, so the
/// hand-over needs no new connection.
struct Pooled {
    name: String,
    shape: Shape,
    pid: u32,
    agent: Agent,
}

/// Pooled VMs as the node's status shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolStatus {
    pub image: String,
    #[serde(skip)]
    pub shape: Shape,
    pub vcpus: u16,
    pub memory_mib: u32,
    pub disk_gib: u32,
    /// How many the operator asked to keep.
    pub target: usize,
    pub ready: usize,
    pub booting: usize,
}

#[derive(Default)]
struct State {
    /// VMs that belong to leases, by request.
    leases: BTreeMap<String, VmRecord>,
    /// VMs being booted or handed over (by VM name): their resources are
    /// taken from the moment they are listed, so concurrent provisions
    /// never overrun the budget.
    booting: BTreeMap<String, Shape>,
    /// Which of them are for a pool, not a lease.
    booting_for_pool: BTreeSet<String>,
    /// Requests being provisioned, with their VM's name.
    starting: BTreeMap<String, String>,
    pool: Vec<Pooled>,
    /// Ports being forwarded right now.
    ports: BTreeSet<u16>,
    /// Pool shapes whose last boot failed, and until when to wait.
    backoff: BTreeMap<Shape, Instant>,
}

/// How long a pool shape whose VM failed to boot is left alone.
const POOL_BACKOFF: Duration = Duration::from_secs(30);

/// Ports tried for one forward before giving up.
const PORT_ATTEMPTS: usize = 64;

struct Inner {
    settings: QemuSettings,
    /// Resolved accelerator (`auto` probed once at open).
    accel: Accel,
    /// The guest clock hint for the kernel (without it a guest on a busy
    /// host may hang calibrating its TSC).
    tsc_khz: Option<u64>,
    state: Mutex<State>,
    /// Woken when a pooled VM is taken (or the provisioner stops).
    refill: Condvar,
    /// Woken when a pooled VM is ready (or failed to boot).
    pooled: Condvar,
    stopping: AtomicBool,
    /// QEMU processes this node started, by VM name (reaped once they exit).
    children: Mutex<BTreeMap<String, std::process::Child>>,
    /// Since when each VM has looked unhealthy (cleared when it recovers).
    unhealthy: Mutex<BTreeMap<String, Instant>>,
    confinement: super::confine::Confinement,
}

/// Real VMs through QEMU, with a background thread keeping the pools full.
pub struct QemuProvisioner {
    inner: Arc<Inner>,
    filler: Option<std::thread::JoinHandle<()>>,
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
    /// Opens the VM directory, adopting VMs a previous run started, and
    /// starts filling the configured pools.
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
        let pools = !settings.pools.is_empty();
        let inner = Arc::new(Inner {
            tsc_khz: tsc_khz(),
            accel,
            state: Mutex::new(State::default()),
            refill: Condvar::new(),
            pooled: Condvar::new(),
            stopping: AtomicBool::new(false),
            children: Mutex::new(BTreeMap::new()),
            unhealthy: Mutex::new(BTreeMap::new()),
            confinement,
            settings,
        });
        inner.adopt()?;
        let filler = if pools {
            let inner = inner.clone();
            let filler = crate::task::thread("vm-pool".into(), move || inner.fill_pools())
                .map_err(|e| backend(format!("cannot start the pool thread: {e}")))?;
            Some(filler)
        } else {
            None
        };
        Ok(QemuProvisioner { inner, filler })
    }

    /// The accelerator in use.
    pub fn accel(&self) -> Accel {
        self.inner.accel
    }

    /// How VMs are confined on this host.
    pub fn confinement(&self) -> &super::confine::Confinement {
        &self.inner.confinement
    }

    /// The directory of the VM a lease holds (record, sockets, disk).
    pub fn vm_dir_of(&self, request: &Pubkey) -> Option<PathBuf> {
        let state = self.inner.lock();
        let record = state.leases.get(&request.to_string())?;
        Some(self.inner.vm_dir(record.vm_name()))
    }
}

impl Drop for QemuProvisioner {
    /// Pooled VMs hold no customer's data: they are stopped with the
    /// provisioner (a restarted node boots new ones). Leases' VMs keep
    /// running and are adopted by the next start.
    fn drop(&mut self) {
        self.inner.stop_pools();
        if let Some(filler) = self.filler.take() {
            let _ = filler.join();
        }
        // A VM the pool thread finished booting while stopping.
        self.inner.stop_pools();
    }
}

impl Inner {
    /// Stops the pool thread's work and the pooled VMs.
    fn stop_pools(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.refill.notify_all();
        self.pooled.notify_all();
        let pooled = std::mem::take(&mut self.lock().pool);
        for vm in pooled {
            self.destroy_vm(&vm.name, vm.pid);
        }
    }

    /// Whether the QEMU of VM `name` (started at `pid`) still runs; reaps
    /// it if this node started it and it exited.
    fn alive(&self, name: &str, pid: u32) -> bool {
        let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(child) = children.get_mut(name) {
            if !matches!(child.try_wait(), Ok(None)) {
                children.remove(name);
                return false;
            }
        }
        drop(children);
        is_our_qemu(pid, &self.vm_dir(name))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn vm_dir(&self, name: &str) -> PathBuf {
        self.settings.dir.join(name)
    }

    fn save(&self, record: &VmRecord) -> Result<(), ProvisionError> {
        let dir = self.vm_dir(record.vm_name());
        let path = dir.join("vm.json");
        let tmp = dir.join("vm.json.tmp");
        let text = serde_json::to_vec_pretty(record).expect("plain data serialises");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| state_err(&path, e))
    }

    /// Reads every VM directory: a VM whose QEMU still runs is adopted;
    /// one whose QEMU is gone is kept as failed (so its lease is reported
    /// and ended); a directory without a record (a pooled VM, or a crash
    /// mid-provision) has its QEMU, if any, stopped and is removed.
    fn adopt(&self) -> Result<(), ProvisionError> {
        let entries =
            std::fs::read_dir(&self.settings.dir).map_err(|e| state_err(&self.settings.dir, e))?;
        let mut state = self.lock();
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
                    record.vm = entry.file_name().to_string_lossy().into_owned();
                    let alive = is_our_qemu(record.pid, &dir);
                    if !alive && !record.failed {
                        tracing::warn!(request = %record.request, "VM's QEMU is gone; reporting it failed");
                        record.failed = true;
                        let _ = self.save(&record);
                    } else if alive {
                        tracing::info!(request = %record.request, pid = record.pid, "adopted running VM");
                    }
                    state.leases.insert(record.request.clone(), record);
                }
                None => {
                    if let Some(pid) = read_pid(&dir) {
                        if is_our_qemu(pid, &dir) {
                            kill(pid);
                        }
                    }
                    tracing::info!(dir = %dir.display(), "removing a VM directory without a lease (pooled or half-made)");
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
        Ok(())
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

    /// Resources in use: every VM that has a QEMU process (a failed one
    /// too, until its process is gone), booting and pooled ones included.
    fn in_use(&self, state: &State) -> (u64, u64) {
        let mut vcpus = 0u64;
        let mut memory = 0u64;
        for r in state.leases.values() {
            if !r.failed || is_our_qemu(r.pid, &self.vm_dir(r.vm_name())) {
                vcpus += u64::from(r.vcpus);
                memory += u64::from(r.memory_mib) + QEMU_OVERHEAD_MIB;
            }
        }
        let others = state
            .booting
            .values()
            .chain(state.pool.iter().map(|p| &p.shape));
        for shape in others {
            vcpus += u64::from(shape.vcpus);
            memory += memory_cost(shape);
        }
        (vcpus, memory)
    }

    fn fits(&self, state: &State, shape: &Shape) -> Result<(), ProvisionError> {
        let (vcpus, memory) = self.in_use(state);
        let want_memory = memory_cost(shape);
        if vcpus + u64::from(shape.vcpus) > u64::from(self.settings.max_vcpus)
            || memory + want_memory > self.settings.max_memory_mib
        {
            return Err(ProvisionError::Capacity(format!(
                "{} vCPUs and {want_memory} MiB more (in use: {vcpus} vCPUs, {memory} MiB, QEMU's \
                 {QEMU_OVERHEAD_MIB} MiB per VM and pooled VMs included; budget {} vCPUs, {} MiB)",
                shape.vcpus, self.settings.max_vcpus, self.settings.max_memory_mib
            )));
        }
        Ok(())
    }

    /// Takes what a lease of `shape` needs for `request`: a pooled VM of
    /// that shape if one is ready, else room for a new one (stopping pooled
    /// VMs of other shapes if that is what it takes: leases come first).
    /// Returns the VM's name and, if pooled, its pid and agent.
    fn take_for_lease(
        &self,
        request: &str,
        shape: &Shape,
    ) -> Result<(String, Option<(u32, Agent)>), ProvisionError> {
        let mut evicted = Vec::new();
        let taken = {
            let mut state = self.lock();
            // A ready pooled VM of this shape; else room for a new one
            // (stopping pooled VMs of other shapes if need be); else, if
            // the pool is booting one of this shape, wait for it.
            let deadline = Instant::now() + self.settings.boot_timeout;
            loop {
                // Checked on every pass: a retry of the same request may
                // have started while this one waited.
                if let Some(record) = state.leases.get(request) {
                    break Err(if record.failed {
                        backend("this lease's VM failed")
                    } else {
                        backend("already running")
                    });
                }
                if state.starting.contains_key(request) {
                    break Err(backend("this lease's VM is being started"));
                }
                if let Some(i) = state.pool.iter().position(|p| p.shape == *shape) {
                    let vm = state.pool.remove(i);
                    if !is_our_qemu(vm.pid, &self.vm_dir(&vm.name)) {
                        tracing::warn!(vm = %vm.name, "a pooled VM died while waiting; discarding it");
                        evicted.push((vm.name, vm.pid));
                        continue;
                    }
                    state.booting.insert(vm.name.clone(), vm.shape);
                    state.starting.insert(request.to_string(), vm.name.clone());
                    break Ok((vm.name, Some((vm.pid, vm.agent))));
                }
                let full = match self.fits(&state, shape) {
                    Ok(()) => {
                        // Booted for this lease: filed under its request.
                        let name = request.to_string();
                        state.booting.insert(name.clone(), *shape);
                        state.starting.insert(request.to_string(), name.clone());
                        break Ok((name, None));
                    }
                    Err(full) => full,
                };
                if let Some(i) = state.pool.iter().position(|p| p.shape != *shape) {
                    let vm = state.pool.remove(i);
                    evicted.push((vm.name, vm.pid));
                    continue;
                }
                let coming = state
                    .booting_for_pool
                    .iter()
                    .any(|n| state.booting.get(n) == Some(shape));
                if !coming || Instant::now() >= deadline || self.stopping.load(Ordering::SeqCst) {
                    break Err(full);
                }
                state = self
                    .pooled
                    .wait_timeout(state, Duration::from_millis(500))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        };
        for (name, pid) in evicted {
            self.destroy_vm(&name, pid);
        }
        taken
    }

    /// Boots VM `name` of `shape` with no lease: no key, no forwarded
    /// port, its agent waiting. Returns its pid and agent connection once
    /// the agent answers. On failure nothing of it is left.
    fn boot(&self, name: &str, shape: &Shape) -> Result<(u32, Agent), ProvisionError> {
        let started = Instant::now();
        let pid = self.start(name, shape).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(self.vm_dir(name));
        })?;
        let dir = self.vm_dir(name);
        let deadline = started + self.settings.boot_timeout;
        let ready = Agent::connect(&dir.join("agent.sock"), deadline).and_then(|mut agent| {
            // A stopping provisioner does not wait out a boot.
            agent.wait_ready(deadline, || {
                self.alive(name, pid) && !self.stopping.load(Ordering::SeqCst)
            })?;
            Ok(agent)
        });
        match ready {
            Ok(agent) => {
                tracing::debug!(
                    vm = name,
                    ms = started.elapsed().as_millis() as u64,
                    "VM booted; its agent answers"
                );
                Ok((pid, agent))
            }
            Err(err) => {
                let console = self.console_tail(name).escape_debug().to_string();
                tracing::warn!(vm = name, error = %err, %console, "VM did not boot; destroying it");
                self.destroy_vm(name, pid);
                Err(backend(format!("the VM did not boot: {err}")))
            }
        }
    }

    /// Starts QEMU for VM `name`; returns its pid.
    fn start(&self, name: &str, shape: &Shape) -> Result<u32, ProvisionError> {
        let image = self.settings.catalog.get(&shape.image).map_err(backend)?;
        let dir = self.vm_dir(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| state_err(&dir, e))?;
        super::confine::owner_only(&dir).map_err(|e| state_err(&dir, e))?;
        let disk = dir.join("disk.qcow2");
        let mut create = Command::new(&self.settings.qemu_img);
        create.args(["create", "-q", "-f", "qcow2"]);
        // An image with a root file system boots from a fresh copy-on-write
        // layer over it; others get an empty disk.
        if let Some(rootfs) = image.rootfs() {
            let size = std::fs::metadata(&rootfs)
                .map_err(|e| state_err(&rootfs, e))?
                .len();
            if size > u64::from(shape.disk_gib) << 30 {
                return Err(backend(format!(
                    "this image's root file system needs a disk of at least {} GiB",
                    size.div_ceil(1 << 30)
                )));
            }
            create.arg("-b").arg(&rootfs).args(["-F", "raw"]);
        }
        let created = create
            .arg(&disk)
            .arg(format!("{}G", shape.disk_gib))
            .output()
            .map_err(|e| backend(format!("qemu-img: {e}")))?;
        if !created.status.success() {
            return Err(backend(format!(
                "qemu-img create: {}",
                String::from_utf8_lossy(&created.stderr).trim()
            )));
        }
        super::confine::owner_only(&disk).map_err(|e| state_err(&disk, e))?;
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
            .args(["-smp", &shape.vcpus.to_string()])
            .args(["-m", &shape.memory_mib.to_string()])
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
            // beyond. The SSH forward is added once a lease holds the VM.
            .args(["-netdev", "user,id=n0,restrict=on"])
            .arg("-drive")
            .arg(format!(
                "id=d0,file={},format=qcow2,if=none",
                disk.display()
            ))
            .args(["-device", "virtio-blk-device,drive=d0"])
            .args(["-device", "virtio-rng-device"])
            // The agent's port: the node's only way in before SSH.
            .args(["-device", "virtio-serial-device"])
            .arg("-chardev")
            .arg(format!(
                "socket,id=agent,path={},server=on,wait=off",
                dir.join("agent.sock").display()
            ))
            .args(["-device", "virtserialport,chardev=agent,name=dagger.agent"])
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
        super::confine::Confinement::limit(&mut command, u64::from(shape.disk_gib) << 30);
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
            .insert(name.to_string(), child);
        Ok(pid)
    }

    /// Gives a booted VM to the lease of `request`: the customer's key and
    /// a host key made here go in through the agent, its SSH port is
    /// forwarded from a free host port, its record is written. Returns the
    /// record (the endpoint pins the host key).
    fn hand_over(
        &self,
        request: &str,
        name: &str,
        pid: u32,
        agent: &mut Agent,
        spec: &VmSpec,
    ) -> Result<VmRecord, ProvisionError> {
        let host = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let host_public = host.verifying_key().to_bytes();
        agent
            .hand_over(
                &dagger_client::ssh::format_public_key(&spec.ssh_key),
                &dropbear_ed25519_key(&host.to_bytes(), &host_public),
                Duration::from_secs(10),
            )
            .map_err(|e| backend(format!("handing the VM over: {e}")))?;
        let port = self.forward_ssh(name)?;
        let record = VmRecord {
            request: request.to_string(),
            vm: name.to_string(),
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
                &host_public,
            )),
            failed: false,
        };
        let saved = self.save(&record);
        let mut state = self.lock();
        state.ports.remove(&port);
        saved?;
        state.leases.insert(request.to_string(), record.clone());
        Ok(record)
    }

    /// Forwards a free host port to VM `name`'s SSH port. QEMU binds the
    /// port itself when asked (QMP), so a port another process (or another
    /// node on this host) holds is simply refused and the next one tried:
    /// no two VMs ever share a port.
    fn forward_ssh(&self, name: &str) -> Result<u16, ProvisionError> {
        let socket = self.vm_dir(name).join("qmp.sock");
        let mut tried = 0;
        let mut last_refusal = String::new();
        for port in self.settings.ports.clone() {
            {
                let mut state = self.lock();
                if state.ports.contains(&port) || state.leases.values().any(|r| r.port == port) {
                    continue;
                }
                state.ports.insert(port);
            }
            let answer = if TcpListener::bind(SocketAddr::new(self.settings.bind, port)).is_ok() {
                tried += 1;
                let command = serde_json::json!({
                    "execute": "human-monitor-command",
                    "arguments": {"command-line": format!(
                        "hostfwd_add n0 tcp:{}:{port}-:22", self.settings.bind
                    )},
                });
                Some(qmp(&socket, &command.to_string()))
            } else {
                None
            };
            match answer {
                Some(Ok(line)) if hmp_succeeded(&line) => return Ok(port),
                Some(Ok(line)) => last_refusal = line,
                Some(Err(err)) => {
                    self.lock().ports.remove(&port);
                    return Err(backend(format!("QMP: {err}")));
                }
                None => {}
            }
            self.lock().ports.remove(&port);
            if tried >= PORT_ATTEMPTS {
                break;
            }
        }
        Err(ProvisionError::Capacity(format!(
            "no free SSH port in {}-{} {}",
            self.settings.ports.start(),
            self.settings.ports.end(),
            last_refusal.trim()
        )))
    }

    /// Waits until the VM's SSH server answers with the host key its
    /// endpoint pins: the lease is reported (and attested) only then.
    fn wait_usable(&self, record: &VmRecord, since: Instant) -> Result<(), ProvisionError> {
        let address = SocketAddr::new(self.settings.bind, record.port);
        let pinned = dagger_client::endpoint::VmEndpoint::parse(&record.endpoint.0)
            .ok()
            .and_then(|e| e.host_key)
            .ok_or_else(|| backend("the endpoint pins no host key"))?;
        let mut last = None;
        while since.elapsed() < self.settings.boot_timeout {
            if !self.alive(record.vm_name(), record.pid) {
                break;
            }
            match super::ssh_probe::check_host_key(address, &pinned, Duration::from_secs(2)) {
                Ok(()) => return Ok(()),
                // A server that proves another key is not ours: no retry.
                Err(err @ super::ssh_probe::ProbeError::WrongHostKey) => {
                    return Err(backend(err));
                }
                Err(err) => last = Some(err),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(backend(format!(
            "the VM did not answer SSH with its pinned host key: {}",
            last.map_or("its QEMU exited".to_string(), |e| e.to_string())
        )))
    }

    /// Stops VM `name`'s QEMU (QMP `quit`, then SIGKILL) and removes its
    /// directory.
    fn destroy_vm(&self, name: &str, pid: u32) {
        let dir = self.vm_dir(name);
        if self.alive(name, pid) {
            let _ = qmp(&dir.join("qmp.sock"), "quit");
            let deadline = Instant::now() + Duration::from_secs(3);
            while self.alive(name, pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if self.alive(name, pid) {
                kill(pid);
                let deadline = Instant::now() + Duration::from_secs(2);
                while self.alive(name, pid) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        self.children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The guest console's last bytes (for a VM that did not boot).
    fn console_tail(&self, name: &str) -> String {
        let socket = self.vm_dir(name).join("qmp.sock");
        let command = serde_json::json!({
            "execute": "ringbuf-read",
            "arguments": {"device": "console", "size": 4096, "format": "utf8"},
        });
        qmp(&socket, &command.to_string()).unwrap_or_default()
    }

    /// The pool shapes the settings ask for, per image served.
    fn pool_targets(&self) -> Vec<(Shape, usize)> {
        let images: Vec<[u8; 32]> = self
            .settings
            .catalog
            .list()
            .into_iter()
            .map(|i| i.id)
            .collect();
        let mut out: BTreeMap<Shape, usize> = BTreeMap::new();
        for pool in &self.settings.pools {
            for image in &images {
                if pool.image.is_none_or(|wanted| wanted == *image) {
                    *out.entry(pool.shape(*image)).or_default() += pool.count;
                }
            }
        }
        out.into_iter().collect()
    }

    /// The pool thread: boots one VM at a time for the first shape short
    /// of its target that fits the budget, until the provisioner stops.
    fn fill_pools(&self) {
        while !self.stopping.load(Ordering::SeqCst) {
            let targets = self.pool_targets();
            let next = {
                let mut state = self.lock();
                let mut dead = Vec::new();
                state.pool.retain(|vm| {
                    let alive = self.alive(&vm.name, vm.pid);
                    if !alive {
                        dead.push(vm.name.clone());
                    }
                    alive
                });
                for name in dead {
                    tracing::warn!(vm = %name, "a pooled VM died; replacing it");
                    self.children
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&name);
                    let _ = std::fs::remove_dir_all(self.vm_dir(&name));
                }
                let now = Instant::now();
                state.backoff.retain(|_, until| *until > now);
                let short = targets.iter().find(|(shape, target)| {
                    let have = state.pool.iter().filter(|p| p.shape == *shape).count()
                        + state
                            .booting_for_pool
                            .iter()
                            .filter(|n| state.booting.get(*n) == Some(shape))
                            .count();
                    // Leases first: no pool boot competes with a lease's
                    // hand-over or boot for the CPU.
                    have < *target
                        && state.starting.is_empty()
                        && !state.backoff.contains_key(shape)
                        && self.fits(&state, shape).is_ok()
                });
                short.map(|(shape, _)| {
                    let name = format!("pool-{}", hex(&rand::random::<[u8; 8]>()));
                    state.booting.insert(name.clone(), *shape);
                    state.booting_for_pool.insert(name.clone());
                    (name, *shape)
                })
            };
            match next {
                Some((name, shape)) => {
                    let booted = self.boot(&name, &shape);
                    let mut state = self.lock();
                    state.booting.remove(&name);
                    state.booting_for_pool.remove(&name);
                    let unwanted = match booted {
                        Ok((pid, agent)) if !self.stopping.load(Ordering::SeqCst) => {
                            tracing::info!(vm = %name, image = %hex(&shape.image), "pooled VM ready");
                            state.pool.push(Pooled {
                                name,
                                shape,
                                pid,
                                agent,
                            });
                            None
                        }
                        Ok((pid, _)) => Some((name, pid)),
                        Err(err) => {
                            tracing::warn!(error = %err, "a pooled VM did not boot; this shape waits {POOL_BACKOFF:?}");
                            state.backoff.insert(shape, Instant::now() + POOL_BACKOFF);
                            None
                        }
                    };
                    drop(state);
                    self.pooled.notify_all();
                    if let Some((name, pid)) = unwanted {
                        self.destroy_vm(&name, pid);
                    }
                }
                None => {
                    let state = self.lock();
                    let _ = self
                        .refill
                        .wait_timeout(state, Duration::from_secs(1))
                        .unwrap_or_else(|p| p.into_inner());
                }
            }
        }
    }
}

/// Whether an HMP command run through QMP succeeded (HMP reports errors
/// as the text it returns).
fn hmp_succeeded(answer: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(answer)
        .ok()
        .and_then(|v| v.get("return").and_then(|r| r.as_str().map(str::to_owned)))
        .is_some_and(|text| text.trim().is_empty())
}

impl Provisioner for QemuProvisioner {
    fn name(&self) -> &'static str {
        match self.inner.accel {
            Accel::Kvm => "qemu-kvm",
            _ => "qemu-tcg",
        }
    }

    fn provision(&self, request: &Pubkey, spec: &VmSpec) -> Result<Endpoint, ProvisionError> {
        let inner = &self.inner;
        let key = request.to_string();
        {
            let state = inner.lock();
            // Its VM is handed over but not yet proven usable: no endpoint.
            if state.starting.contains_key(&key) {
                return Err(backend("this lease's VM is being started"));
            }
            if let Some(record) = state.leases.get(&key) {
                return if record.failed {
                    Err(backend("this lease's VM failed"))
                } else {
                    Ok(record.endpoint.clone())
                };
            }
        }
        let since = Instant::now();
        let shape = Shape::of(spec);
        // The image must exist (and match its hashes) before anything is
        // taken for it.
        inner
            .settings
            .catalog
            .get(&spec.image_id)
            .map_err(backend)?;
        let (name, pooled) = inner.take_for_lease(&key, &shape)?;
        let from_pool = pooled.is_some();
        inner.refill.notify_all();
        let handed = (|| {
            let (pid, mut agent) = match pooled {
                Some(vm) => vm,
                None => inner.boot(&name, &shape)?,
            };
            let record = inner
                .hand_over(&key, &name, pid, &mut agent, spec)
                .inspect_err(|_| inner.destroy_vm(&name, pid))?;
            Ok::<_, ProvisionError>(record)
        })();
        {
            let mut state = inner.lock();
            state.booting.remove(&name);
            if handed.is_err() {
                state.starting.remove(&key);
            }
        }
        let record = handed?;
        tracing::info!(%request, vm = %name, port = record.port, from_pool, "VM handed over; waiting for SSH with its host key");
        let usable = inner.wait_usable(&record, since);
        if let Err(err) = &usable {
            tracing::warn!(%request, console = %inner.console_tail(&name).escape_debug(), error = %err, "VM is not usable; destroying it");
            inner.lock().leases.remove(&key);
            inner.destroy_vm(&name, record.pid);
        }
        inner.lock().starting.remove(&key);
        usable?;
        tracing::info!(%request, ms = since.elapsed().as_millis() as u64, from_pool, "VM answers on SSH with its pinned host key");
        Ok(record.endpoint)
    }

    /// Failed once the QEMU process is gone, or once QMP said for
    /// `unhealthy_grace` that the guest is not running (paused, shut down,
    /// panicked). Health never rests on the guest's forwarded SSH port: the
    /// port is reachable by others, and a neighbour holding connections to
    /// it must not be able to get the VM terminated. A QMP socket that does
    /// not answer (only the node can reach it; QEMU serves one client at a
    /// time) says nothing either way.
    fn status(&self, request: &Pubkey) -> VmStatus {
        let inner = &self.inner;
        let key = request.to_string();
        let record = {
            let state = inner.lock();
            match state.leases.get(&key) {
                None => return VmStatus::Unknown,
                Some(record) if record.failed => return VmStatus::Failed,
                Some(record) => record.clone(),
            }
        };
        let name = record.vm_name().to_string();
        let dead = !inner.alive(&name, record.pid);
        let healthy = !dead && {
            let stopped = qmp(&inner.vm_dir(&name).join("qmp.sock"), "query-status")
                .is_ok_and(|answer| !answer.contains("\"status\": \"running\""));
            !stopped
        };
        let mut unhealthy = inner.unhealthy.lock().unwrap_or_else(|p| p.into_inner());
        if healthy {
            unhealthy.remove(&key);
            return VmStatus::Running;
        }
        let since = *unhealthy.entry(key.clone()).or_insert_with(Instant::now);
        if !dead && since.elapsed() < inner.settings.unhealthy_grace {
            return VmStatus::Running;
        }
        unhealthy.remove(&key);
        drop(unhealthy);
        tracing::warn!(%request, dead, "VM failed");
        let mut failed = record;
        failed.failed = true;
        let _ = inner.save(&failed);
        if let Some(r) = inner.lock().leases.get_mut(&key) {
            r.failed = true;
        }
        VmStatus::Failed
    }

    fn terminate(&self, request: &Pubkey) -> Result<(), ProvisionError> {
        let record = self.inner.lock().leases.remove(&request.to_string());
        if let Some(record) = record {
            tracing::info!(%request, "destroying VM");
            self.inner.destroy_vm(record.vm_name(), record.pid);
        }
        Ok(())
    }

    fn vms(&self) -> Vec<Pubkey> {
        self.inner
            .lock()
            .leases
            .keys()
            .filter_map(|k| k.parse().ok())
            .collect()
    }

    fn images(&self) -> ServedImages {
        ServedImages::Only(
            self.inner
                .settings
                .catalog
                .list()
                .into_iter()
                .map(|image| image.id)
                .collect(),
        )
    }

    fn shutdown(&self) {
        self.inner.stop_pools();
    }

    fn image_names(&self) -> Vec<([u8; 32], String)> {
        self.inner
            .settings
            .catalog
            .list()
            .into_iter()
            .filter_map(|image| {
                // Shown to customers: printable, one line, bounded.
                let name: String = image
                    .manifest
                    .name
                    .chars()
                    .filter(|c| c.is_ascii_graphic() || *c == ' ')
                    .take(crate::controller::txs::MAX_IMAGE_NAME)
                    .collect();
                crate::controller::txs::valid_image_name(&name).then_some((image.id, name))
            })
            .collect()
    }

    fn pools(&self) -> Vec<PoolStatus> {
        let targets = self.inner.pool_targets();
        let state = self.inner.lock();
        targets
            .into_iter()
            .map(|(shape, target)| PoolStatus {
                image: hex(&shape.image),
                shape,
                vcpus: shape.vcpus,
                memory_mib: shape.memory_mib,
                disk_gib: shape.disk_gib,
                target,
                ready: state.pool.iter().filter(|p| p.shape == shape).count(),
                booting: state
                    .booting_for_pool
                    .iter()
                    .filter(|n| state.booting.get(*n) == Some(&shape))
                    .count(),
            })
            .collect()
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

/// The host's TSC frequency in kHz (from `/proc/cpuinfo`).
fn tsc_khz() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu MHz"))?;
    let mhz: f64 = line.split(':').nth(1)?.trim().parse().ok()?;
    Some((mhz * 1000.0) as u64)
}
